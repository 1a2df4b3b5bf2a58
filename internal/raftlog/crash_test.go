package raftlog

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// reopenCrashed opens the raft storage on a crashed image, recovering the
// log as after a power cut (not clean).
func reopenCrashed(t *testing.T, fs vfs.FS) (*Storage, *seglog.Log) {
	t.Helper()
	l, err := seglog.Open(fs, testDir, testCfg, seglog.State{})
	if err != nil {
		t.Fatalf("reopen log: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	s, err := Open(fs, l)
	if err != nil {
		t.Fatalf("reopen raft storage: %v", err)
	}
	return s, l
}

// A power cut right after Append returns keeps every entry: Append waits
// for the fsync (and so may raft send its messages).
func TestCrashAfterAppendKeepsEntries(t *testing.T) {
	s, _, fs := newStorage(t)
	m := &model{first: 1}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 5; i++ {
		ents, recs := randomEntries(t, rng, m.last()+1, 4, uint64(1+i))
		if err := s.Append(ents); err != nil {
			t.Fatal(err)
		}
		m.apply(ents, recs)
		hs := &raftpb.HardState{Term: proto.Uint64(uint64(1 + i)), Vote: proto.Uint64(1), Commit: proto.Uint64(m.last() - 2)}
		if err := s.SetHardState(hs); err != nil {
			t.Fatal(err)
		}
		crashed := fs.Crash(memfs.CrashOptions{}) // every unsynced byte lost
		s2, _ := reopenCrashed(t, crashed)
		checkTranslator(t, s2, m, fmt.Sprintf("crash after append %d", i))
		got, _, _ := s2.InitialState()
		if !proto.Equal(got, hs) {
			t.Fatalf("crash after append %d: hard state %v, want %v", i, got, hs)
		}
	}
}

// A power cut in the middle of an Append (at each of its file writes, with
// none, half or all of the unsynced bytes reaching the disk) keeps every
// entry of earlier Appends, and of the cut one a prefix: after the reopen
// the translator and the entries agree with that prefix. The cut Append
// also replaces a tail, so the old tail or a prefix of the new one stays.
func TestCrashDuringAppendKeepsPrefix(t *testing.T) {
	keeps := map[string]func(string, int) int{
		"none": func(string, int) int { return 0 },
		"half": func(_ string, n int) int { return n / 2 },
		"all":  memfs.KeepAll,
	}
	for name, keep := range keeps {
		for k := 1; k <= 40; k++ {
			t.Run(fmt.Sprintf("%s/write%d", name, k), func(t *testing.T) {
				s, _, fs := newStorage(t)
				rng := rand.New(rand.NewPCG(uint64(k), 3))
				base := &model{first: 1}
				ents, recs := randomEntries(t, rng, 1, 12, 1)
				if err := s.Append(ents); err != nil {
					t.Fatal(err)
				}
				base.apply(ents, recs)
				cut := fs.CrashAtWrite(k, memfs.CrashOptions{KeepUnsyncedPrefix: keep}, nil)
				newEnts, newRecs := randomEntries(t, rng, 9, 10, 2)
				if err := s.Append(newEnts); err != nil {
					t.Fatal(err)
				}
				crashed := cut()
				s2, _ := reopenCrashed(t, crashed)
				last, _ := s2.LastIndex()
				t.Logf("last index after the cut: %d", last)
				// Either the old tail survived whole (the cut came
				// before the truncation was durable), or entries 1..8
				// and a prefix of the new ones.
				want := &model{first: 1, ents: base.ents, end: base.end}
				if t2, _ := s2.Term(last); !(t2 == 1 && last == base.last()) {
					want = &model{first: 1}
					want.apply(ents[:8], recs[:8])
					if n := int(last) - 8; n > 0 {
						want.apply(newEnts[:n], newRecs[:n])
					}
				}
				checkTranslator(t, s2, want, "after the cut")
			})
		}
	}
}
