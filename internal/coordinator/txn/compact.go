package txn

import (
	"context"
	"fmt"
	"sort"
)

// Snapshot compaction of the transaction log, as the group coordinator
// does for its offsets log (Strom has no log cleaner): once the log is at
// least Config.CompactBytes and at most half of it is live, the
// coordinator rolls the log, appends the live table (the latest record of
// every transactional id, kept beside the log as it is appended) at the
// head of the new segment, waits until it is durable, and advances the log
// start offset to its first record, which deletes every older segment.
// Appends wait while the snapshot is written (not for its fsync) and land
// after it, so their records win on replay. A crash at any step leaves a
// log whose replay gives the same state.

// noteLiveLocked records an appended record in the live table; smu held.
func (c *Coordinator) noteLiveLocked(key, value []byte) {
	k := string(key)
	if old, ok := c.live[k]; ok {
		c.liveBytes -= int64(len(k) + len(old))
	}
	c.live[k] = value
	c.liveBytes += int64(len(k) + len(value))
}

// maybeCompact asks the loop for a compaction when the log has grown past
// the threshold with at most half of it live; smu held.
func (c *Coordinator) maybeCompactLocked() {
	if c.p == nil || c.cfg.CompactBytes <= 0 || c.p.Replicated() {
		return // a replicated log is raft's: no rewrite under it (follow.go)
	}
	size := c.p.Size()
	if size < c.cfg.CompactBytes || c.liveBytes*2 > size {
		return
	}
	select {
	case c.compactCh <- struct{}{}:
	default: // one is already asked for
	}
}

// compact runs one snapshot compaction (on the loop goroutine).
func (c *Coordinator) compact(ctx context.Context) error {
	c.smu.Lock()
	p := c.p
	if p == nil {
		c.smu.Unlock()
		return nil
	}
	if err := p.Roll(); err != nil {
		c.smu.Unlock()
		return fmt.Errorf("transaction log: compaction: roll: %w", err)
	}
	first := p.EndOffset()
	keys := make([]string, 0, len(c.live))
	for k := range c.live {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	last := int64(-1)
	for _, k := range keys {
		off, _, err := c.appendLocked([]byte(k), c.live[k])
		if err != nil {
			c.smu.Unlock()
			return fmt.Errorf("transaction log: compaction: %w", err)
		}
		last = off
	}
	c.smu.Unlock()
	if last >= first {
		if err := p.WaitDurable(ctx, last); err != nil {
			return fmt.Errorf("transaction log: compaction: %w", err)
		}
	}
	before := p.Size()
	if _, err := p.DeleteRecords(first); err != nil {
		return fmt.Errorf("transaction log: compaction: advance start: %w", err)
	}
	if c.cfg.Checkpoint != nil {
		if err := c.cfg.Checkpoint(); err != nil {
			return fmt.Errorf("transaction log: compaction: checkpoint: %w", err)
		}
	}
	c.log.Info("compacted the transaction log", "live_records", len(keys), "start_offset", first, "bytes_before", before, "bytes_after", p.Size())
	return nil
}
