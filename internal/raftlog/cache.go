package raftlog

import (
	"math"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
)

// The entry cache keeps the entries Append stored last, as Entries would
// read them back (the batch as written: base offset and leader epoch
// set), so that raft's two readers of fresh entries, the committed
// entries of the next Readys and a leader's appends to a follower whose
// in-flight window was full, take them from memory instead of reading,
// checking and decoding the segments again.
//
// Rules (all under Storage.mu):
//   - The cache holds the entries [first, first+len(ents)) and, when not
//     empty, ends at LastIndex: it is filled only by Append, in order, and
//     emptied whenever it could not stay so (a budget refusal, a cut tail
//     it does not reach, an install, a reset).
//   - What it holds equals the log: a cut tail (Append over LastIndex, a
//     TruncateTo through it) drops the cached entries from the cut on, a
//     start move drops those below the new first index.
//   - Bounded: at most cacheMaxBytes of entry data per storage (the oldest
//     go first) and cacheBudget over the process; the owner releases what
//     no reader needs any more (ReleaseCache: applied, and on a leader
//     matched by every active follower), so an idle partition holds none.
//   - Cached entries are shared: Entries' callers must not modify them or
//     their Data (raft and the transport only read them).
const cacheMaxBytes = 32 << 20

// cacheBudget bounds the bytes cached by every Storage of the process
// together (10,000 partitions with a stopped follower must not hold 32 MiB
// each); an Append over it caches nothing until releases make room.
var cacheBudget atomic.Int64

func init() { cacheBudget.Store(256 << 20) }

// cacheUsed is the bytes cached now, over every Storage.
var cacheUsed atomic.Int64

type entryCache struct {
	first uint64 // index of ents[0]
	ents  []*raftpb.Entry
	bytes int64
}

func (c *entryCache) last() uint64 { return c.first + uint64(len(c.ents)) - 1 }

// add caches e, the entry of LastIndex just appended.
func (c *entryCache) add(e *raftpb.Entry) {
	n := int64(len(e.GetData()))
	if len(c.ents) > 0 && e.GetIndex() != c.last()+1 {
		c.clear()
	}
	if cacheUsed.Add(n) > cacheBudget.Load() {
		cacheUsed.Add(-n)
		c.clear() // the cache must end at LastIndex: start again later
		return
	}
	if len(c.ents) == 0 {
		c.first = e.GetIndex()
	}
	c.ents = append(c.ents, e)
	c.bytes += n
	for c.bytes > cacheMaxBytes && len(c.ents) > 1 {
		c.dropFront(1)
	}
}

// dropFront forgets the k oldest entries.
func (c *entryCache) dropFront(k int) {
	var n int64
	for _, e := range c.ents[:k] {
		n += int64(len(e.GetData()))
	}
	clear(c.ents[:k])
	c.ents = c.ents[k:]
	c.first += uint64(k)
	c.bytes -= n
	cacheUsed.Add(-n)
	if len(c.ents) == 0 {
		c.ents = nil
	}
}

// dropBelow forgets the entries below index.
func (c *entryCache) dropBelow(index uint64) {
	if len(c.ents) == 0 || index <= c.first {
		return
	}
	c.dropFront(int(min(index-c.first, uint64(len(c.ents)))))
}

// cutFrom forgets the entries at and above index (a cut tail).
func (c *entryCache) cutFrom(index uint64) {
	if len(c.ents) == 0 || index > c.last() {
		return
	}
	if index <= c.first {
		c.clear()
		return
	}
	k := int(index - c.first)
	var n int64
	for _, e := range c.ents[k:] {
		n += int64(len(e.GetData()))
	}
	clear(c.ents[k:])
	c.ents = c.ents[:k]
	c.bytes -= n
	cacheUsed.Add(-n)
}

func (c *entryCache) clear() {
	clear(c.ents)
	c.ents = nil
	cacheUsed.Add(-c.bytes)
	c.bytes = 0
}

// get returns the cached entry of index, nil when not cached.
func (c *entryCache) get(index uint64) *raftpb.Entry {
	if len(c.ents) == 0 || index < c.first || index > c.last() {
		return nil
	}
	return c.ents[index-c.first]
}

// ReleaseCache forgets the cached entries at and below index: the owner
// calls it with what no reader needs any more (the applied index, and on
// a leader at most the match index of every follower it still sends to).
func (s *Storage) ReleaseCache(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index == math.MaxUint64 {
		s.mu.cache.clear()
		return
	}
	s.mu.cache.dropBelow(index + 1)
}

// CachedBytes is the entry data this storage holds in memory.
func (s *Storage) CachedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.cache.bytes
}
