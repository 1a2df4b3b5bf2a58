package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/record"
)

// entriesFromDisk is Entries read from the segments only, bypassing the
// cache: what Entries answered before there was one.
func entriesFromDisk(t *testing.T, s *Storage, lo, hi, maxSize uint64) []*raftpb.Entry {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out, _, err := s.readEntriesLocked(lo, hi, maxSize)
	if err != nil {
		t.Fatalf("entries [%d, %d) from disk: %v", lo, hi, err)
	}
	return out
}

// checkEntriesMatchDisk compares Entries (cache and segments) with the
// segments alone over random ranges and sizes.
func checkEntriesMatchDisk(t *testing.T, s *Storage, rng *rand.Rand, what string) {
	t.Helper()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if last < first {
		return
	}
	for range 20 {
		lo := first + rng.Uint64N(last-first+1)
		hi := lo + 1 + rng.Uint64N(last-lo+1)
		maxSize := []uint64{0, 100, 1000, math.MaxUint64}[rng.IntN(4)]
		got, err := s.Entries(lo, hi, maxSize)
		if err != nil {
			t.Fatalf("%s: Entries(%d, %d, %d): %v", what, lo, hi, maxSize, err)
		}
		want := entriesFromDisk(t, s, lo, hi, maxSize)
		if len(got) != len(want) {
			t.Fatalf("%s: Entries(%d, %d, %d): %d entries, the segments give %d", what, lo, hi, maxSize, len(got), len(want))
		}
		for i := range got {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("%s: Entries(%d, %d, %d)[%d]: %v, the segments give %v", what, lo, hi, maxSize, i, got[i], want[i])
			}
		}
	}
}

// The cache answers exactly what the segments hold, through appends, cut
// tails, releases, start moves and a budget that runs out.
func TestEntryCacheMatchesTheLog(t *testing.T) {
	for _, budget := range []int64{256 << 20, 2000} {
		t.Run(fmt.Sprintf("budget-%d", budget), func(t *testing.T) {
			old := cacheBudget.Load()
			cacheBudget.Store(budget)
			t.Cleanup(func() { cacheBudget.Store(old) })
			used := cacheUsed.Load()

			s, _, _ := newStorage(t)
			m := &model{first: 1}
			rng := rand.New(rand.NewPCG(3, uint64(budget)))
			term := uint64(1)
			for step := range 60 {
				switch r := rng.IntN(10); {
				case r < 6 || len(m.ents) < 4: // append at the end
					ents, recs := randomEntries(t, rng, m.last()+1, 1+rng.IntN(4), term)
					if err := s.Append(ents); err != nil {
						t.Fatal(err)
					}
					m.apply(ents, recs)
				case r < 8: // a new leader overwrites a tail
					term++
					from := m.last() - uint64(rng.IntN(3))
					ents, recs := randomEntries(t, rng, from, 1+rng.IntN(3), term)
					if err := s.Append(ents); err != nil {
						t.Fatal(err)
					}
					m.apply(ents, recs)
				case r < 9: // what no reader needs any more
					s.ReleaseCache(m.first + uint64(rng.IntN(len(m.ents))))
				default: // the start moves (retention)
					k := 1 + rng.IntN(2)
					if err := s.AdvanceStart(m.ents[k].offset); err != nil {
						t.Fatal(err)
					}
					m.first += uint64(k)
					m.ents = m.ents[k:]
				}
				checkEntriesMatchDisk(t, s, rng, fmt.Sprintf("step %d", step))
				if c := &s.mu.cache; len(c.ents) > 0 && (c.first < m.first || c.last() != m.last()) {
					t.Fatalf("step %d: cache holds [%d, %d], the log [%d, %d]", step, c.first, c.last(), m.first, m.last())
				}
				if c := s.CachedBytes(); c > cacheMaxBytes || c > budget {
					t.Fatalf("step %d: %d bytes cached, limits %d and %d", step, c, cacheMaxBytes, budget)
				}
			}
			s.ReleaseCache(math.MaxUint64)
			if s.CachedBytes() != 0 || cacheUsed.Load() != used {
				t.Fatalf("after releasing all: %d bytes cached here, %d in the process (was %d)", s.CachedBytes(), cacheUsed.Load(), used)
			}
		})
	}
}

// Entries after an Append come from memory: the segments are not read
// (a byte flipped on disk under the cache would otherwise be reported).
func TestEntriesOfAFreshAppendComeFromTheCache(t *testing.T) {
	s, _, _ := newStorage(t)
	ents := []*raftpb.Entry{normal(1, 1, clientBatch(t, "a", 3, 10)), normal(2, 1, clientBatch(t, "b", 3, 10))}
	if err := s.Append(ents); err != nil {
		t.Fatal(err)
	}
	got, err := s.Entries(1, 3, math.MaxUint64)
	if err != nil || len(got) != 2 {
		t.Fatalf("Entries: %d entries, %v", len(got), err)
	}
	for i := range got {
		if got[i] != s.mu.cache.get(uint64(i+1)) {
			t.Fatalf("entry %d was not answered from the cache", i+1)
		}
		if err := sameEntry(t, got[i], ents[i]); err != nil {
			t.Fatal(err)
		}
	}
	s.ReleaseCache(1)
	got, err = s.Entries(1, 3, math.MaxUint64)
	if err != nil || len(got) != 2 || got[0] == nil || got[1] != s.mu.cache.get(2) || s.mu.cache.get(1) != nil {
		t.Fatalf("after releasing 1: %d entries, %v", len(got), err)
	}
}

// A commit index that moved alone stays in memory (no StateFile write:
// two fsyncs saved per commit) until Flush or the next write of the file;
// a new term or vote is durable at once; a conf state is written with the
// commit that applied it.
func TestCommitAloneWaitsForTheNextWrite(t *testing.T) {
	s, l, fs := newStorage(t)
	if err := s.Append([]*raftpb.Entry{normal(1, 2, clientBatch(t, "a", 1, 10)), normal(2, 2, clientBatch(t, "b", 1, 10)), normal(3, 2, clientBatch(t, "c", 1, 10))}); err != nil {
		t.Fatal(err)
	}
	hs := func(term, vote, commit uint64) *raftpb.HardState {
		return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
	}
	onDisk := func(what string, want *raftpb.HardState, voters int) {
		t.Helper()
		crashed := fs.Crash(memfsDropUnsynced)
		l2 := openLog(t, crashed)
		defer l2.Close()
		s2, err := Open(crashed, l2)
		if err != nil {
			t.Fatal(err)
		}
		got, cs, _ := s2.InitialState()
		if !proto.Equal(got, want) || len(cs.GetVoters()) != voters {
			t.Fatalf("%s: after a power cut: %v, %d voters; want %v, %d voters", what, got, len(cs.GetVoters()), want, voters)
		}
	}
	steps := []struct {
		what   string
		do     func() error
		want   *raftpb.HardState
		voters int
	}{
		{"a term and vote", func() error { return s.SetHardState(hs(2, 1, 0)) }, hs(2, 1, 0), 0},
		{"a commit alone", func() error { return s.SetHardState(hs(2, 1, 1)) }, hs(2, 1, 0), 0},
		{"Flush", s.Flush, hs(2, 1, 1), 0},
		{"another commit alone", func() error { return s.SetHardState(hs(2, 1, 2)) }, hs(2, 1, 1), 0},
		{"a conf state", func() error { return s.SetConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}) }, hs(2, 1, 2), 3},
		{"a commit, then a vote in a new term", func() error {
			if err := s.SetHardState(hs(2, 1, 3)); err != nil {
				return err
			}
			return s.SetHardState(hs(3, 2, 3))
		}, hs(3, 2, 3), 3},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		onDisk(st.what, st.want, st.voters)
	}
	_ = l
}

// AppendChecked writes the base offset and epoch into the entries' own
// Data (no copy), still checks the CRC of every entry its caller did not
// vouch for, and Entries then answers the very batch stored.
func TestAppendCheckedStoresInPlaceAndChecksTheRest(t *testing.T) {
	s, l, _ := newStorage(t)
	a := normal(1, 3, clientBatch(t, "a", 2, 10))
	if err := s.AppendChecked([]*raftpb.Entry{a}, func(*raftpb.Entry) bool { return false }); err != nil {
		t.Fatal(err)
	}
	h, _ := record.ReadBatchHeader(a.GetData())
	if h.BaseOffset != 0 || h.PartitionLeaderEpoch != 3 {
		t.Fatalf("entry's Data after AppendChecked: base offset %d epoch %d, want 0 and 3", h.BaseOffset, h.PartitionLeaderEpoch)
	}
	b := normal(2, 3, clientBatch(t, "b", 2, 10))
	b.Data[len(b.Data)-1] ^= 0xff // the CRC no longer matches
	err := s.AppendChecked([]*raftpb.Entry{b}, func(e *raftpb.Entry) bool { return e.GetIndex() == 1 })
	if !errors.Is(err, ErrBadEntry) {
		t.Fatalf("a corrupt batch its caller did not vouch for: %v, want ErrBadEntry", err)
	}
	if last, _ := s.LastIndex(); last != 1 || l.EndOffset() != 2 {
		t.Fatalf("after the refusal: last index %d, log end %d", last, l.EndOffset())
	}
	got := entriesFromDisk(t, s, 1, 2, math.MaxUint64)
	if !bytes.Equal(got[0].GetData(), a.GetData()) {
		t.Fatal("the segments hold other bytes than the entry's Data")
	}
}
