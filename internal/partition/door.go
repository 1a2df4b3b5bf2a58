package partition

import (
	"context"
	"fmt"
	"math"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/segment"
)

// The partition's errors, as its callers see them: the handlers map these,
// and only these, of the storage layer's errors to Kafka codes. They are
// the storage layer's own values, so errors.Is matches whichever layer
// wrapped them.
var (
	// ErrOffsetOutOfRange: a read below the start or past the end.
	ErrOffsetOutOfRange = seglog.ErrOffsetOutOfRange
	// ErrBatchTooLarge: a batch over the topic's max.message.bytes.
	ErrBatchTooLarge = seglog.ErrBatchTooLarge
	// ErrEmptyAppend: an append of no batch.
	ErrEmptyAppend = seglog.ErrEmptyAppend
	// ErrMissingKey: a record without a key for a compacted topic.
	ErrMissingKey = seglog.ErrMissingKey
	// ErrFailed: the log stopped taking writes (an fsync failed); a restart
	// recovers it.
	ErrFailed = seglog.ErrFailed
	// ErrStorage: a write failed for now (a full disk, no descriptors);
	// nothing acknowledged is lost and a later append retries.
	ErrStorage = seglog.ErrStorage
	// ErrClosed: the partition was closed or deleted meanwhile.
	ErrClosed = seglog.ErrClosed
	// ErrCorrupt: stored data failed its checksum on a read.
	ErrCorrupt = segment.ErrCorrupt
	// ErrNotBatchBoundary: TruncateTo was given an offset inside a batch.
	ErrNotBatchBoundary = seglog.ErrNotBatchBoundary
	// ErrTruncated: WaitDurable waited for an offset TruncateTo removed.
	ErrTruncated = seglog.ErrTruncated
)

// Health is whether the partition's storage takes writes: Healthy,
// Degraded (not for now: a full disk; retried) or Failed (an fsync
// failed; until a restart).
type Health = seglog.Health

// The states of Health.
const (
	Healthy  = seglog.Healthy
	Degraded = seglog.Degraded
	Failed   = seglog.Failed
)

// Config is a partition's log settings (from its topic's configs).
type Config = seglog.Config

// ReadResult is what Read returns: whole batches from the requested
// offset, and the log's bounds when it was read.
type ReadResult = seglog.ReadResult

// TimestampResult answers an offset-for-timestamp lookup.
type TimestampResult = seglog.TimestampResult

// StartOffset is the first readable offset (Kafka's log start offset).
func (p *Partition) StartOffset() int64 { return p.log.StartOffset() }

// EndOffset is the offset the next record gets (the log end offset).
func (p *Partition) EndOffset() int64 { return p.log.EndOffset() }

// DurableOffset is the offset below which every record is fsynced.
func (p *Partition) DurableOffset() int64 { return p.log.DurableOffset() }

// Size is the bytes the partition's segments take.
func (p *Partition) Size() int64 { return p.log.Size() }

// NumSegments is how many segment files the log has.
func (p *Partition) NumSegments() int { return p.log.NumSegments() }

// Dir is the partition's directory.
func (p *Partition) Dir() string { return p.log.Dir() }

// SetConfig applies changed topic configs to the log. A replicated
// partition's log keeps no retention of its own (its start may move only
// through raft's storage: the replicator asks RetentionOffset and moves
// it), and its leader stamps LogAppendTime before proposing
// (replicated.go).
func (p *Partition) SetConfig(cfg Config) {
	if rs := p.repl.Load(); rs != nil {
		cfg = rs.logConfig(cfg)
	}
	p.log.SetConfig(cfg)
}

// Read returns whole batches from offset, at most maxBytes of them but at
// least one when minOne is set (KIP-74), never past the high watermark.
func (p *Partition) Read(offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	rs := p.repl.Load()
	if rs == nil {
		return p.log.Read(offset, maxBytes, minOne)
	}
	hw, _ := rs.state()
	if end := p.log.EndOffset(); offset > end || offset < p.log.StartOffset() {
		return ReadResult{EndOffset: hw, StartOffset: p.log.StartOffset()}, fmt.Errorf("partition %s-%d: offset %d outside [%d, %d]: %w", p.Topic, p.Index, offset, p.log.StartOffset(), end, ErrOffsetOutOfRange)
	}
	if offset >= hw {
		// Between the high watermark and the log end: nothing readable yet.
		return ReadResult{EndOffset: hw, StartOffset: p.log.StartOffset()}, nil
	}
	res, err := p.log.Read(offset, maxBytes, minOne)
	if err != nil {
		return res, err
	}
	res.EndOffset = hw
	return capRead(res, hw), nil
}

// ReadSection is Read for a reader that can send file ranges: the batches
// may come back as res.Section (seglog.ReadSection), which the caller must
// Release. On a replicated partition the section stops at the high
// watermark, as Read does.
func (p *Partition) ReadSection(offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	rs := p.repl.Load()
	if rs == nil {
		return p.log.ReadSection(offset, maxBytes, minOne, math.MaxInt64)
	}
	hw, _ := rs.state()
	if end := p.log.EndOffset(); offset > end || offset < p.log.StartOffset() {
		return ReadResult{EndOffset: hw, StartOffset: p.log.StartOffset()}, fmt.Errorf("partition %s-%d: offset %d outside [%d, %d]: %w", p.Topic, p.Index, offset, p.log.StartOffset(), end, ErrOffsetOutOfRange)
	}
	if offset >= hw {
		return ReadResult{EndOffset: hw, StartOffset: p.log.StartOffset()}, nil
	}
	res, err := p.log.ReadSection(offset, maxBytes, minOne, hw)
	if err != nil {
		return res, err
	}
	res.EndOffset = hw
	if res.Section != nil {
		return res, nil
	}
	return capRead(res, hw), nil
}

// WalkHeaders calls fn with the header of every batch from the one holding
// from, in offset order, until fn returns false.
func (p *Partition) WalkHeaders(from int64, fn func(h record.BatchHeader) bool) error {
	return p.log.WalkHeaders(from, fn)
}

// OffsetForTimestamp is the earliest offset with a timestamp >= ts.
func (p *Partition) OffsetForTimestamp(ts int64) (TimestampResult, error) {
	return p.log.OffsetForTimestamp(ts)
}

// MaxTimestamp is the offset and timestamp of the record with the largest
// timestamp (ListOffsets' MAX_TIMESTAMP).
func (p *Partition) MaxTimestamp() (TimestampResult, error) { return p.log.MaxTimestamp() }

// DeleteRecords moves the start offset up to offset (Kafka's DeleteRecords;
// whole segments below it are removed) and returns the new start. An
// offset past the high watermark is ErrOffsetOutOfRange. On a replica the
// move goes through the raft group (StartMover): every replica applies it
// at commit, the leader answers once it has, and the start moves by whole
// batches (to the base of the batch holding offset: raft's first entry is
// a batch), so the new start may be below offset.
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	if rs := p.repl.Load(); rs != nil {
		m, ok := rs.r.(StartMover)
		if !ok {
			return 0, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, ErrNotReplicatedYet)
		}
		if hw, _ := rs.state(); offset > hw || offset < 0 {
			return 0, fmt.Errorf("partition %s-%d: delete records to %d past the high watermark %d: %w", p.Topic, p.Index, offset, hw, ErrOffsetOutOfRange)
		}
		ctx, cancel := context.WithTimeout(context.Background(), deleteRecordsTimeout)
		defer cancel()
		start, err := m.MoveStart(ctx, offset)
		p.notify()
		if err != nil {
			return 0, fmt.Errorf("partition %s-%d: delete records to %d: %w", p.Topic, p.Index, offset, err)
		}
		return start, nil
	}
	if err := p.log.AdvanceStartOffset(offset); err != nil {
		return 0, err
	}
	p.notify()
	return p.log.StartOffset(), nil
}

// SegmentInfo describes one segment file.
type SegmentInfo = seglog.SegmentInfo

// Segments describes the log's segments, oldest first (ListOffsets v0
// answers from their base offsets and file times).
func (p *Partition) Segments() []SegmentInfo { return p.log.Segments() }

// Roll seals the active segment and starts a new one at the end offset.
func (p *Partition) Roll() error { return p.log.Roll() }

// AppendRules are the checks a produce request's version asks of its data
// beyond the log's own validation (Kafka's ProduceRequest.validateRecords).
type AppendRules struct {
	// OneBatch: exactly one batch (produce v3+).
	OneBatch bool
	// NoZstd: zstd is refused (produce before v7).
	NoZstd bool
	// NoControl: control batches are refused (they are the broker's own).
	NoControl bool
	// VerifyTxn asks the transaction coordinator whether producer pid at
	// epoch has an ongoing transaction that includes this partition; it
	// is called, under the partition's lock, for a transactional batch
	// of a producer with no transaction open here yet (KIP-890 part 1).
	// Nil refuses such batches (ErrTxnNotVerified). It must not call
	// back into this partition.
	VerifyTxn func(pid int64, epoch int16) error
}

func (r AppendRules) check(hdrs []record.BatchHeader) error {
	if r.OneBatch && len(hdrs) != 1 {
		return fmt.Errorf("%w: %d record batches; exactly one per partition is allowed", record.ErrInvalidRecord, len(hdrs))
	}
	for _, h := range hdrs {
		switch {
		case r.NoControl && h.IsControl():
			return fmt.Errorf("%w: clients may not write control batches", record.ErrInvalidRecord)
		case r.NoZstd && h.Codec() == record.CodecZstd:
			return fmt.Errorf("%w: zstd needs produce v7 or later", record.ErrUnsupportedCodec)
		}
	}
	return nil
}
