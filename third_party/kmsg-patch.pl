#!/usr/bin/env perl
# Applies Strom's one patch to a copy of upstream kmsg, in place:
#   perl third_party/kmsg-patch.pl DIR
# DIR holds kmsg's generated.go and record.go (a writable copy of the module).
# What and why: third_party/kmsg/PATCHES.md. `make verify-kmsg` checks that
# third_party/kmsg is upstream plus this script, and nothing else.
#
# The script fails, and writes nothing, when its pattern matches nothing in a
# file or when an array allocated at its claimed length is left unpatched:
# a new kmsg whose generated code changed shape must be looked at, not
# half-patched in silence. Core Perl only (perl-base).

use strict;
use warnings;

my $dir = shift @ARGV or die "usage: perl kmsg-patch.pl DIR\n";
die "usage: perl kmsg-patch.pl DIR\n" if @ARGV;

# Arrays grow with what is parsed instead of being allocated at their
# claimed length up front, and their loops stop once the reader failed.
# Upstream's two loop forms: `for i := range a {` (generated.go) and
# `for i := int32(0); i < l; i++ {` (record.go).
sub grown_array {
	my ($indent, $type, $loop_indent) = @_;
	return "\n${indent}a = append(a, make([]$type, min(l, 16))...)\n"
		. "$loop_indent}\n"
		. "${loop_indent}for i := int32(0); i < l && b.Ok(); i++ {\n"
		. "$loop_indent\tif int(i) == len(a) {\n"
		. "$loop_indent\t\ta = append(a, make([]$type, min(int32(len(a)), l-i))...)\n"
		. "$loop_indent\t}\n";
}

sub patch_arrays {
	my ($src) = @_;
	return $$src =~ s/
		\n(\t+)a\ =\ append\(a,\ make\(\[\]([^,\n]+),\ l\)\.\.\.\)\n
		(\t+)\}\n
		\3for\ i\ :=\ (?:range\ a|int32\(0\);\ i\ <\ l;\ i\+\+)\ \{\n
	/grown_array($1, $2, $3)/gex;
}

my %patched;
for my $file (qw(generated.go record.go)) {
	my $path = "$dir/$file";
	open(my $in, '<', $path) or die "kmsg-patch: $path: $!\n";
	my $src = do { local $/; <$in> };
	close($in) or die "kmsg-patch: $path: $!\n";

	my $n = patch_arrays(\$src);
	$n or die "kmsg-patch: $file: no array allocation matched the pattern;"
		. " upstream's generated code changed shape (see third_party/kmsg/PATCHES.md)\n";
	my $left = () = $src =~ /make\(\[\][^,\n]+, l\)/g;
	$left and die "kmsg-patch: $file: $left arrays still allocated at their claimed length"
		. " after $n were patched; extend the pattern (see third_party/kmsg/PATCHES.md)\n";
	$patched{$path} = [$src, $n];
}

# Write only once every file patched whole.
for my $path (sort keys %patched) {
	my ($src, $n) = @{ $patched{$path} };
	open(my $out, '>', $path) or die "kmsg-patch: $path: $!\n";
	print {$out} $src or die "kmsg-patch: $path: $!\n";
	close($out) or die "kmsg-patch: $path: $!\n";
	print STDERR "kmsg-patch: $path: $n arrays\n";
}
