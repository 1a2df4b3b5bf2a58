# Patches kmsg v1.15.0's generated.go, record.go and api.go in place:
#   perl -0pi third_party/kmsg-patch.pl generated.go record.go api.go
# What and why: third_party/kmsg/PATCHES.md.

# 1. Tagged-field loops stop once the reader has failed.
s/for i := b\.Uvarint\(\); i > 0; i-- \{/for i := b.Uvarint(); i > 0 && b.Ok(); i-- {/g;
s/(func internalReadTags\(b \*kbin\.Reader\) Tags \{\n\tvar t Tags\n\tfor num := b\.Uvarint\(\); num > 0)/$1 && b.Ok()/;
s/for num := b\.Uvarint\(\); num > 0; num-- \{/for num := b.Uvarint(); num > 0 && !tagReaderFailed(b); num-- {/g;
s{(// SkipTags skips tags in a TagReader\.)}{// tagReaderFailed reports whether b can tell it has failed and has.
// (Patched: see third_party/kmsg/PATCHES.md.)
func tagReaderFailed(b TagReader) bool {
	o, ok := b.(interface{ Ok() bool })
	return ok && !o.Ok()
}

$1};

# 2. Arrays grow with what is parsed instead of being allocated at the
#    claimed length up front, and their loops stop once the reader failed.
s/\n(\t+)a = append\(a, make\(\[\]([^,\n]+), l\)\.\.\.\)\n(\t+)\}\n\3for i := int32\(0\); i < l; i\+\+ \{\n/\n$1a = append(a, make([]$2, min(l, 16))...)\n$3}\n$3for i := int32(0); i < l && b.Ok(); i++ {\n$3\tif int(i) == len(a) {\n$3\t\ta = append(a, make([]$2, min(int32(len(a)), l-i))...)\n$3\t}\n/g;
