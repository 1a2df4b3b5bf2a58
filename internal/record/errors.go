package record

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of them
// (with context: which field, which offset), so callers branch with errors.Is
// and never on strings. See the package documentation for which caller
// should treat which sentinel how.
var (
	// ErrShortBuffer: the input ends before the structure it starts. For a
	// log reader or crash recovery this is a truncated tail; for a produce
	// request it is as bad as ErrCorrupt.
	ErrShortBuffer = errors.New("record: short buffer")

	// ErrCorrupt: a checksum does not match, a length field disagrees with
	// the bytes that hold it, or a compressed payload does not decompress.
	ErrCorrupt = errors.New("record: corrupt")

	// ErrUnsupportedMagic: a magic byte this function does not handle.
	ErrUnsupportedMagic = errors.New("record: unsupported magic")

	// ErrInvalidRecord: the checksum is fine but the content is not a valid
	// batch or message: records do not decode, counts or offset deltas are
	// inconsistent, a compressed wrapper is empty or nests compression.
	ErrInvalidRecord = errors.New("record: invalid record")

	// ErrTooLarge: decompressing would exceed the caller's cap.
	ErrTooLarge = errors.New("record: decompressed size exceeds limit")

	// ErrUnsupportedCodec: an unknown compression codec, or one the target
	// format cannot carry (zstd in message sets v0/v1).
	ErrUnsupportedCodec = errors.New("record: unsupported compression codec")
)
