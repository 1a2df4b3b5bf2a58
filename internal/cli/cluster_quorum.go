package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// quorumInfo is the metadata quorum as its leader describes it
// (DescribeQuorum); absent from `cluster info` when the broker does not
// serve DescribeQuorum or has no quorum (a single node).
type quorumInfo struct {
	Leader        int32         `json:"leader"`
	Epoch         int32         `json:"epoch"`
	HighWatermark int64         `json:"high_watermark"`
	Voters        []quorumVoter `json:"voters"`
}

type quorumVoter struct {
	ID     int32 `json:"id"`
	LogEnd int64 `json:"log_end"`
	// Lag is the entries the voter is behind the leader's high watermark.
	Lag int64 `json:"lag"`
	// LastFetchMs and LastCaughtUpMs are milliseconds since the epoch; -1
	// when unknown.
	LastFetchMs    int64 `json:"last_fetch_ms"`
	LastCaughtUpMs int64 `json:"last_caught_up_ms"`
}

const metadataTopic = "__cluster_metadata"

// describeQuorum asks the controller (and, if it has lost the lead since,
// the leader it names) for the quorum. ok is false when there is none to
// show: the broker does not serve DescribeQuorum or has no quorum.
func describeQuorum(ctx context.Context, cl *kgo.Client, controller int32) (quorumInfo, bool, error) {
	target := controller
	for attempt := 0; attempt < 3 && target >= 0; attempt++ {
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = metadataTopic
		rp := kmsg.NewDescribeQuorumRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := cl.Broker(int(target)).Request(ctx, req)
		if err != nil {
			return quorumInfo{}, false, err
		}
		resp := kresp.(*kmsg.DescribeQuorumResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return quorumInfo{}, false, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return quorumInfo{}, false, fmt.Errorf("describe quorum: malformed answer from broker %d", target)
		}
		p := resp.Topics[0].Partitions[0]
		switch err := kerr.ErrorForCode(p.ErrorCode); err {
		case nil:
		case kerr.UnknownTopicOrPartition:
			return quorumInfo{}, false, nil // a single node: no quorum
		case kerr.NotLeaderForPartition:
			if p.LeaderID == target {
				return quorumInfo{}, false, err
			}
			target = p.LeaderID
			continue
		default:
			return quorumInfo{}, false, err
		}
		q := quorumInfo{Leader: p.LeaderID, Epoch: p.LeaderEpoch, HighWatermark: p.HighWatermark, Voters: []quorumVoter{}}
		for _, v := range p.CurrentVoters {
			q.Voters = append(q.Voters, quorumVoter{ID: v.ReplicaID, LogEnd: v.LogEndOffset, Lag: max(p.HighWatermark-v.LogEndOffset, 0),
				LastFetchMs: v.LastFetchTimestamp, LastCaughtUpMs: v.LastCaughtUpTimestamp})
		}
		return q, true, nil
	}
	return quorumInfo{}, false, fmt.Errorf("describe quorum: no quorum leader known")
}

func printQuorum(w io.Writer, q quorumInfo, now time.Time) {
	fmt.Fprintf(w, "\nMetadata quorum:  leader %d, epoch %d, high watermark %d\n", q.Leader, q.Epoch, q.HighWatermark)
	t := newTable("VOTER", "LOG END", "LAG", "LAST FETCH", "LAST CAUGHT UP")
	ago := func(ms int64) string {
		if ms < 0 {
			return "never"
		}
		return now.Sub(time.UnixMilli(ms)).Truncate(time.Millisecond).String() + " ago"
	}
	for _, v := range q.Voters {
		t.add(v.ID, v.LogEnd, v.Lag, ago(v.LastFetchMs), ago(v.LastCaughtUpMs))
	}
	t.write(w)
}
