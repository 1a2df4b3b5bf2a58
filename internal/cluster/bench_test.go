package cluster

import (
	"fmt"
	"log/slog"
	"testing"
)

// BenchmarkCreateTopics10k is one CreateTopics of 10,000 one-partition
// topics on the operating system's filesystem (the 90 s case):
//
//	go test -run '^$' -bench CreateTopics10k -benchtime 1x ./internal/cluster/
func BenchmarkCreateTopics10k(b *testing.B) {
	specs := make([]TopicSpec, 10_000)
	for i := range specs {
		specs[i] = TopicSpec{Name: fmt.Sprintf("topic-%05d", i), Partitions: 1}
	}
	for b.Loop() {
		b.StopTimer()
		c, err := Open(Config{DataDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, r := range c.CreateTopics(specs, false) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}
