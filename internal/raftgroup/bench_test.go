package raftgroup

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// BenchmarkPropose3Nodes measures proposals per second through a 3-node
// group in one process (memNet, real tickers at the default 100 ms), 100-byte
// payloads, from 1 or 64 concurrent proposers on the leader, on memfs
// (the engine's own cost) and on the disk under the test's temp dir
// (every append and hard state fsynced on the three nodes).
func BenchmarkPropose3Nodes(b *testing.B) {
	for _, disk := range []string{"memfs", "disk"} {
		for _, par := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/proposers=%d", disk, par), func(b *testing.B) {
				benchPropose(b, disk == "disk", par)
			})
		}
	}
}

func benchPropose(b *testing.B, disk bool, par int) {
	net := &memNet{groups: map[uint64]*Group{}, cut: map[[2]uint64]bool{}}
	ids := []uint64{1, 2, 3}
	var groups []*Group
	for _, id := range ids {
		var fs vfs.FS = memfs.New()
		dir := "/g"
		if disk {
			fs, dir = vfs.Default, filepath.Join(b.TempDir(), "g")
		}
		g, err := Start(Config{
			ID: id, Voters: ids, Dir: dir, FS: fs, SM: &benchSM{}, Send: net.sender(id),
			Logger: quiet, // default ticks: 10 ms ones made a loaded machine's fsync stalls cost leaderships
		})
		if err != nil {
			b.Fatal(err)
		}
		net.set(id, g)
		groups = append(groups, g)
	}
	defer func() {
		for _, g := range groups {
			g.Stop()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := groups[0].WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	lead := groups[groups[0].Leader()-1]
	payload := make([]byte, 100)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for w := 0; w < par; w++ {
		n := b.N / par
		if w < b.N%par {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if _, err := lead.Propose(ctx, payload); err != nil {
					errs <- fmt.Errorf("proposal %d of %d: %w (status %+v)", i, n, err, lead.Status())
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "proposals/s")
}

// benchSM counts what it applies.
type benchSM struct{ n uint64 }

func (s *benchSM) Apply(uint64, []byte) any  { s.n++; return s.n }
func (s *benchSM) Snapshot() ([]byte, error) { return fmt.Appendf(nil, "%d", s.n), nil }
func (s *benchSM) Restore(_ uint64, d []byte) error {
	_, err := fmt.Sscanf(string(d), "%d", &s.n)
	return err
}
