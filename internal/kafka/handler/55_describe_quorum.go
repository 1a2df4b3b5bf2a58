package handler

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// DescribeQuorum (KIP-595, KIP-853): the metadata quorum, for
// `kafka-metadata-quorum.sh describe --status / --replication` and
// `strom cluster info`.
//
// Behavior:
//   - Only __cluster_metadata partition 0 exists; any other topic or
//     partition is UNKNOWN_TOPIC_OR_PARTITION. On a single node (no
//     quorum: its metadata is a local file) so is __cluster_metadata.
//   - The leader answers: LeaderID, LeaderEpoch (the raft term),
//     HighWatermark (the commit index), and for every voter its log end
//     (raft match index), last fetch (its last answer to an append or a
//     heartbeat) and last caught-up time (its last answer with the whole
//     log), in milliseconds; -1 for a voter not heard from since this
//     node became leader. Offsets are raft indexes of the metadata log.
//     There are no observers: every node is a voter.
//   - Another node answers the partition with NOT_LEADER_OR_FOLLOWER and
//     the leader and epoch it knows (as Kafka's KafkaRaftClient): the
//     client asks the controller that DescribeCluster names.
//
// Version notes: v1 last fetch and caught-up times; v2 error messages,
// replica directory ids (zero: Strom has one log dir) and Nodes (each
// voter's CONTROLLER listener). Flexible from v0.
func init() { register(55, 0, 2, handleDescribeQuorum) }

// MetadataTopic is the metadata quorum's log, as KRaft names it.
const MetadataTopic = "__cluster_metadata"

// QuorumSource describes the metadata quorum as this node sees it.
type QuorumSource interface {
	QuorumState() QuorumState
}

// QuorumState is the metadata quorum as this node sees it.
type QuorumState struct {
	Leader        int32 // node id; -1 unknown
	Epoch         int32 // the raft term
	HighWatermark int64 // the commit index
	IsLeader      bool  // Voters' progress is known only on the leader
	Voters        []QuorumVoter
}

// QuorumVoter is one voter; progress fields are zero off the leader.
type QuorumVoter struct {
	ID                      int32
	Host                    string // controller listener
	Port                    uint16
	LogEnd                  int64
	LastFetch, LastCaughtUp time.Time // zero: not heard from
}

func handleDescribeQuorum(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeQuorumRequest)
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	var st QuorumState
	if h.cfg.Quorum != nil {
		st = h.cfg.Quorum.QuorumState()
	}
	for _, rt := range r.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			h.quorumPartition(req.Version, &p, rt.Topic, st)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if req.Version >= 2 && h.cfg.Quorum != nil {
		for _, v := range st.Voters {
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = v.ID
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = "CONTROLLER", v.Host, v.Port
			n.Listeners = append(n.Listeners, l)
			resp.Nodes = append(resp.Nodes, n)
		}
	}
	return now(resp)
}

func (h *Handler) quorumPartition(version int16, p *kmsg.DescribeQuorumResponseTopicPartition, topic string, st QuorumState) {
	p.LeaderID = -1
	fail := func(code *kerr.Error, msg string) {
		p.ErrorCode = code.Code
		if version >= 2 {
			p.ErrorMessage = &msg
		}
	}
	switch {
	case h.cfg.Quorum == nil:
		fail(kerr.UnknownTopicOrPartition, "this broker runs without a metadata quorum (its metadata is a local file)")
		return
	case topic != MetadataTopic || p.Partition != 0:
		fail(kerr.UnknownTopicOrPartition, fmt.Sprintf("the metadata quorum is %s-0", MetadataTopic))
		return
	}
	p.LeaderID, p.LeaderEpoch = st.Leader, st.Epoch
	if !st.IsLeader {
		fail(kerr.NotLeaderForPartition, fmt.Sprintf("not the quorum leader; the leader is node %d", st.Leader))
		return
	}
	p.HighWatermark = st.HighWatermark
	for _, v := range st.Voters {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset = v.ID, v.LogEnd
		if !v.LastFetch.IsZero() {
			rs.LastFetchTimestamp = v.LastFetch.UnixMilli()
		}
		if !v.LastCaughtUp.IsZero() {
			rs.LastCaughtUpTimestamp = v.LastCaughtUp.UnixMilli()
		}
		p.CurrentVoters = append(p.CurrentVoters, rs)
	}
}
