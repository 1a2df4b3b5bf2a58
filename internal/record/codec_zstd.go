package record

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A zstd payload is a sequence of frames (RFC 8878), each a header and
// blocks, or a skippable frame:
//
//	+-----------+------------+-------------+---------+--------------------+
//	| magic (4) | FHD (1)    | window (0-1)| dict ID | content size (0-8) |  frame header
//	+-----------+------------+-------------+---------+--------------------+
//	| block header (3, LE): bit 0 last, bits 1-2 type, bits 3-23 size     |  repeated until
//	| block data: raw: size bytes; RLE: 1 byte; compressed: size bytes    |  the last block
//	+---------------------------------------------------------------------+
//	| content checksum (4, if FHD bit 2)                                  |
//	+---------------------------------------------------------------------+
//
//	skippable: magic 0x184D2A5? (4) | size (4, LE) | size bytes
//
// A raw or RLE block regenerates exactly its size; a compressed block at
// most Block_Maximum_Size, min(window, 128 KiB). So walking the block
// headers, without decoding anything, bounds the output of a frame that
// does not declare its content size (librdkafka with a shared libzstd, the
// Java client, any streaming encoder) within one block per block.
const (
	zstdMaxBlock    = 128 << 10
	zstdMinWindow   = 1 << 10
	zstdBlockRaw    = 0
	zstdBlockRLE    = 1
	zstdBlockCompr  = 2
	zstdChecksumLen = 4
	// zstdFirstRoom is the least room a first attempt gets when the
	// bound is larger: as much as most batches hold.
	zstdFirstRoom = 1 << 20
)

var (
	zstdEncoders = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			panic(err) // constant options
		}
		return e
	}}
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(err) // constant options
		}
		return d
	}}
)

func compressZstd(dst, src []byte) []byte {
	e := zstdEncoders.Get().(*zstd.Encoder)
	defer zstdEncoders.Put(e)
	return e.EncodeAll(src, dst)
}

// decompressZstd decodes src with DecodeAll into a buffer it sizes itself.
//
// The output is bounded with the decoder's cap limit (DecodeAll never writes
// more than cap(dst) bytes), not with WithDecoderMaxMemory, because the
// decoder also caps the frame's window by that, and Java producers write
// streaming frames declaring a window (2 MiB and more at the default level)
// larger than many small batches, and than a small cap. The window itself
// costs nothing here: DecodeAll decodes into dst, which is the history.
//
// The room comes from zstdOutputBound. When the size is known (declared
// content sizes, raw and RLE blocks) it is the room, as before: a declared
// size is believed up to the cap. Otherwise the bound from the block
// headers is tight for the full 128 KiB blocks encoders write, but 128
// times the output for a frame of 1 KiB blocks, so the first attempt gets
// it only up to zstdFirstRoom or 16 times the input, and decoding restarts
// with twice the room (at most the bound or the cap) when it runs out: at
// most about twice the work of one pass.
//
// Running out of room must be recognised without the decoder's help: when a
// compressed block does not fit, klauspost/compress fails with a plain error
// ("output bigger than max block size"), not ErrDecoderSizeExceeded (the
// cause of issue 15 item 9: every frame without a content size over 64 KiB
// was refused). DecodeAll returns the blocks decoded before the failure, so
// a failure with less than one block of room left counts as running out; a
// failure with more is corruption.
func decompressZstd(src []byte, maxSize int, ob *outBuf) ([]byte, error) {
	bound, exact, maxBlock, err := zstdOutputBound(src, maxSize)
	if err != nil {
		return nil, err
	}
	top := min(bound, maxSize+1)
	room := top
	if !exact {
		room = min(top, max(zstdFirstRoom, 16*len(src)))
	}
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	for {
		out, err := d.DecodeAll(src, ob.get(room)[:0:room])
		if err == nil {
			if len(out) > maxSize {
				return nil, errTooLarge(maxSize)
			}
			return out, nil
		}
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) && room-len(out) >= maxBlock {
			return nil, err
		}
		if room < top {
			room = min(2*room, top)
			continue
		}
		if bound > maxSize {
			return nil, errTooLarge(maxSize)
		}
		// The frames hold more than their blocks can.
		return nil, fmt.Errorf("output over its bound of %d bytes: %w: %w", bound, ErrCorrupt, err)
	}
}

// zstdOutputBound walks the frames of src and returns an upper bound of the
// decompressed size: the declared content size of frames that have one,
// else the sum of their blocks' bounds; exact when that is the size of any
// valid payload (no compressed block in a frame without a content size).
// It stops with ErrTooLarge once the bound exceeds maxSize only if that
// much is certain (declared sizes, raw and RLE blocks), and returns the
// largest block maximum it met. Malformed framing is ErrCorrupt; the
// blocks' content is left to the decoder.
func zstdOutputBound(src []byte, maxSize int) (bound int, exact bool, maxBlock int, err error) {
	sure := 0 // output certain to be produced, if the payload is valid
	for len(src) > 0 {
		var fh zstd.Header
		rest, err := fh.DecodeAndStrip(src)
		if err != nil {
			return 0, false, 0, fmt.Errorf("frame header: %w: %w", ErrCorrupt, err)
		}
		if fh.Skippable {
			if uint64(fh.SkippableSize) > uint64(len(rest)) {
				return 0, false, 0, fmt.Errorf("skippable frame of %d bytes, %d left: %w", fh.SkippableSize, len(rest), ErrCorrupt)
			}
			src = rest[fh.SkippableSize:]
			continue
		}
		window := fh.WindowSize
		if fh.SingleSegment {
			window = max(fh.FrameContentSize, zstdMinWindow)
		}
		blockMax := int(min(window, zstdMaxBlock))
		maxBlock = max(maxBlock, blockMax)
		frameBound, frameSure := 0, 0
		for last := false; !last; {
			if len(rest) < 3 {
				return 0, false, 0, fmt.Errorf("truncated block header: %w", ErrCorrupt)
			}
			bh := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
			rest = rest[3:]
			last = bh&1 != 0
			size := int(bh >> 3)
			data := size
			switch (bh >> 1) & 3 {
			case zstdBlockRaw:
				frameSure += size
				frameBound += size
			case zstdBlockRLE:
				data = 1
				frameSure += size
				frameBound += size
			case zstdBlockCompr:
				frameBound += blockMax
			default:
				return 0, false, 0, fmt.Errorf("reserved block type: %w", ErrCorrupt)
			}
			if data > len(rest) {
				return 0, false, 0, fmt.Errorf("block of %d bytes, %d left: %w", data, len(rest), ErrCorrupt)
			}
			rest = rest[data:]
			// Both sums stay small: a block is at most 2^21 bytes and
			// the loop stops once the sure part passes the cap.
			if frameSure > maxSize-sure {
				return 0, false, 0, errTooLarge(maxSize)
			}
		}
		if fh.HasCheckSum {
			if len(rest) < zstdChecksumLen {
				return 0, false, 0, fmt.Errorf("truncated content checksum: %w", ErrCorrupt)
			}
			rest = rest[zstdChecksumLen:]
		}
		if fh.HasFCS {
			if fh.FrameContentSize > uint64(maxSize-sure) {
				return 0, false, 0, errTooLarge(maxSize)
			}
			frameSure = int(fh.FrameContentSize)
			frameBound = frameSure
		}
		sure += frameSure
		bound = min(bound+frameBound, maxSize+1) // past the cap, the amount no longer matters
		src = rest
	}
	return bound, sure == bound, maxBlock, nil
}
