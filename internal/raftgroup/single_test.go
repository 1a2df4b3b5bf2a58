package raftgroup

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
)

// A group of one voter (a single node's metadata quorum) snapshots and
// compacts its log like any group: after several SnapshotEntries its log
// starts past index 1, within two SnapshotEntries of its end, and a restart
// restores the snapshot and replays the rest, every entry applied once.
func TestSingleVoterSnapshotsBoundTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, func(cfg *Config) { cfg.SnapshotEntries = 10; cfg.KeepEntries = 2 })
		synctest.Wait()
		var want []string
		for i := range 45 {
			p := fmt.Sprint("change-", i)
			c.mustPropose(1, p)
			want = append(want, p)
		}
		st := c.nodes[1].g.Status()
		if st.SnapshotIndex == 0 || st.FirstIndex <= 1 || st.LastIndex-st.FirstIndex > 2*10+2 {
			t.Fatalf("the log of one voter is not bounded by its snapshots: %+v", st)
		}
		c.stop(1)
		c.start(1)
		synctest.Wait()
		c.mustPropose(1, "after")
		want = append(want, "after")
		if got := c.converged(); !slices.Equal(got, want) {
			t.Fatalf("applied after a restart from the snapshot: %v", got)
		}
		if _, restores, _ := c.nodes[1].sm.state(); restores != 1 {
			t.Fatalf("the restart restored %d snapshots, want 1", restores)
		}
	})
}
