package seglog

import (
	"fmt"

	"github.com/stromhq/strom/internal/record"
)

// Compression is compression.type: whether batches are stored with the
// producer's codec (Recompress false, "producer") or rebuilt with Codec at
// Level (record.DefaultLevel: the codec's default).
type Compression struct {
	Recompress bool
	Codec      record.Codec
	Level      int
}

// Recompress rebuilds, with the log's compression.type, the batches of data
// (validated: hdrs from Validate) whose codec differs from it, as Kafka's
// LogValidator does; producer id, epoch, sequences, flags and timestamps
// are kept (record.Recompress). Control batches are left as they are. A
// rebuilt batch is checked against max.message.bytes again (a batch may
// grow: ErrBatchTooLarge). Data is returned unchanged when nothing needs
// rebuilding, else a new slice. Like Validate it runs on the producer's
// goroutine, before the append lock.
func (l *Log) Recompress(data []byte, hdrs []record.BatchHeader) ([]byte, []record.BatchHeader, error) {
	cfg := l.config()
	want := cfg.Compression
	if !want.Recompress {
		return data, hdrs, nil
	}
	changes := false
	for _, h := range hdrs {
		changes = changes || (h.Codec() != want.Codec && !h.IsControl())
	}
	if !changes {
		return data, hdrs, nil
	}
	out := make([]byte, 0, len(data))
	outHdrs := make([]record.BatchHeader, len(hdrs))
	off := 0
	for i, h := range hdrs {
		b := data[off : off+h.Size()]
		off += h.Size()
		if h.Codec() == want.Codec || h.IsControl() {
			out = append(out, b...)
			outHdrs[i] = h
			continue
		}
		nb, nh, err := record.Recompress(b, want.Codec, want.Level, cfg.MaxDecompressedBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("log %s: batch %d: %w", l.dir, i, err)
		}
		if len(nb) > cfg.MaxBatchBytes {
			return nil, nil, fmt.Errorf("log %s: batch %d recompressed to %s is %d bytes > %d: %w", l.dir, i, want.Codec, len(nb), cfg.MaxBatchBytes, ErrBatchTooLarge)
		}
		out = append(out, nb...)
		outHdrs[i] = nh
	}
	return out, outHdrs, nil
}
