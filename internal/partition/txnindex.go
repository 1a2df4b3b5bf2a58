package partition

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/segment"
)

// The aborted-transaction list on disk: Kafka's <base>.txnindex files
// (layout in package segment), one per segment that holds ABORT markers,
// each listing the aborted transactions whose marker is in that segment.
//
// They are written at Snapshot, whole and atomically, before the producer
// snapshot, and only what changed: a segment's file is rewritten when its
// entries differ from what this process last wrote or read there, and a
// file whose segment is gone (retention, a truncation) is removed. Open
// takes from them the entries whose marker is below the snapshot's offset
// and replays the log after it for the rest, so the files never need to be
// current: entries below a snapshot never change (a truncation below it
// deletes the snapshot first), and without a snapshot every entry comes
// from the log. An unreadable file is ignored and the state rebuilt from
// the log (from its start, which is what a missing snapshot costs).

// loadTxnIndexes returns the aborted transactions the index files hold
// with a marker in [start, below), ordered, and notes the files' contents;
// ok is false when a file could not be read (the caller then replays the
// whole log). snapMu held, or p not yet shared.
func (p *Partition) loadTxnIndexes(start, below int64) ([]AbortedTxn, bool) {
	p.txnFiles = map[int64][]byte{}
	names, err := p.fs.List(p.log.Dir())
	if err != nil {
		return nil, false
	}
	var out []AbortedTxn
	for _, n := range names {
		base, ok := segment.ParseTxnIndexName(n)
		if !ok {
			continue
		}
		b, err := atomicfile.ReadBytes(p.fs, filepath.Join(p.log.Dir(), n), 64<<20)
		if err != nil {
			return nil, false
		}
		es, err := segment.ParseTxnIndex(b)
		if err != nil {
			return nil, false
		}
		p.txnFiles[base] = b
		for _, e := range es {
			if e.LastOffset >= start && e.LastOffset < below {
				out = append(out, AbortedTxn(e))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastOffset < out[j].LastOffset })
	return out, true
}

// writeTxnIndexes brings the index files in line with aborted (every
// aborted transaction at or above the log start, by marker offset). Called
// by Snapshot without the partition's lock, snapMu held.
func (p *Partition) writeTxnIndexes(aborted []AbortedTxn) error {
	segs := p.log.Segments()
	want := map[int64][]byte{}
	for _, a := range aborted {
		i := sort.Search(len(segs), func(i int) bool { return segs[i].Base > a.LastOffset }) - 1
		if i < 0 {
			continue // below the first segment: gone
		}
		base := segs[i].Base
		want[base] = segment.AppendTxnEntry(want[base], segment.TxnEntry(a))
	}
	dir := p.log.Dir()
	for base, b := range want {
		if old, ok := p.txnFiles[base]; ok && bytes.Equal(old, b) {
			continue
		}
		if err := atomicfile.WriteBytes(p.fs, filepath.Join(dir, segment.TxnIndexName(base)), b); err != nil {
			return fmt.Errorf("partition %s-%d: txnindex: %w", p.Topic, p.Index, err)
		}
		p.txnFiles[base] = b
	}
	removed := false
	for base := range p.txnFiles {
		if _, ok := want[base]; ok {
			continue
		}
		err := p.fs.Remove(filepath.Join(dir, segment.TxnIndexName(base)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("partition %s-%d: txnindex: %w", p.Topic, p.Index, err)
		}
		delete(p.txnFiles, base)
		removed = true
	}
	if removed {
		if err := p.fs.SyncDir(dir); err != nil {
			return fmt.Errorf("partition %s-%d: txnindex: %w", p.Topic, p.Index, err)
		}
	}
	return nil
}
