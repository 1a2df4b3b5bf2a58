package raftlog

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// BenchmarkOpenRebuild measures Open's translator rebuild from batch
// headers: 100,000 one-record entries in 1 MiB segments on memfs.
func BenchmarkOpenRebuild(b *testing.B) {
	const entries = 100_000
	fs := memfs.New()
	cfg := seglog.Config{SegmentBytes: 1 << 20, RetentionMs: -1}
	l, err := seglog.Open(fs, testDir, cfg, seglog.State{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(fs, l)
	if err != nil {
		b.Fatal(err)
	}
	data := clientBatch(b, "v", 1, 100)
	for i := uint64(1); i <= entries; i += 1000 {
		ents := make([]*raftpb.Entry, 1000)
		for k := range ents {
			ents[k] = normal(i+uint64(k), 1, data)
		}
		if err := s.Append(ents); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	b.ResetTimer()
	for b.Loop() {
		l, err := seglog.Open(fs, testDir, cfg, seglog.State{Clean: true})
		if err != nil {
			b.Fatal(err)
		}
		s, err := Open(fs, l)
		if err != nil {
			b.Fatal(err)
		}
		if li, _ := s.LastIndex(); li != entries {
			b.Fatalf("LastIndex %d", li)
		}
		l.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/entries, "ns/entry")
}
