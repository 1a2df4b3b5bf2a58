package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetFetchSeesPipelinedCommit: a client that pipelines an
// OffsetCommit and an OffsetFetch on one connection (Kafka answers them one
// at a time) reads its own commit, although the commit's answer waits for
// an fsync while the fetch is already being handled.
func TestOffsetFetchSeesPipelinedCommit(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "ryw", 1, nil)
	dc := dpDial(t, b.Addr)
	for i := int64(1); i <= 50; i++ {
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Version, commit.Group = 8, "ryw-group"
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "ryw"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, i
		rt.Partitions = append(rt.Partitions, rp)
		commit.Topics = append(commit.Topics, rt)
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Version, fetch.Group = 7, "ryw-group"
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = "ryw", []int32{0}
		fetch.Topics = append(fetch.Topics, ft)

		cc := dc.send(commit)
		cf := dc.send(fetch)
		cr := dc.read(commit, cc).(*kmsg.OffsetCommitResponse)
		fr := dc.read(fetch, cf).(*kmsg.OffsetFetchResponse)
		if cr.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit %d: %+v", i, cr)
		}
		if got := fr.Topics[0].Partitions[0].Offset; got != i {
			t.Fatalf("fetch after commit %d read %d", i, got)
		}
	}
}
