package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The cluster page (GET /api/v1/cluster/status): brokers, the metadata
// quorum as its leader describes it (DescribeQuorum, API 55), and the
// partitions that are not fully replicated or have no leader, all from
// the Kafka protocol (Metadata and DescribeQuorum), as any Kafka client
// could ask.

// metadataQuorumTopic is the metadata quorum's log, as KRaft names it.
const metadataQuorumTopic = "__cluster_metadata"

type brokerStatusJSON struct {
	brokerJSON
	Controller bool `json:"controller"`
}

// quorumReplicaJSON is a voter or an observer of the metadata quorum.
type quorumReplicaJSON struct {
	ID           int32 `json:"id"`
	LogEndOffset int64 `json:"log_end_offset"`
	// Lag is how many entries the replica's log ends before the leader's
	// high watermark (0 when at or past it).
	Lag int64 `json:"lag"`
	// LastFetchMs and LastCaughtUpMs are Unix milliseconds; null when the
	// leader has not heard from the replica (Kafka's -1).
	LastFetchMs    *int64 `json:"last_fetch_ms"`
	LastCaughtUpMs *int64 `json:"last_caught_up_ms"`
}

type quorumJSON struct {
	// Available is false when there is no quorum to show: the broker does
	// not serve DescribeQuorum, or is a single node whose metadata is a
	// local file. Message then says which, and the fields below are zero.
	Available     bool                `json:"available"`
	Message       string              `json:"message,omitempty"`
	Leader        int32               `json:"leader"`
	Epoch         int32               `json:"epoch"`
	HighWatermark int64               `json:"high_watermark"`
	Voters        []quorumReplicaJSON `json:"voters"`
	Observers     []quorumReplicaJSON `json:"observers"`
	// Error is set when the quorum could not be described (the rest of
	// the page is still served).
	Error string `json:"error,omitempty"`
}

// partitionStateJSON is a partition named on the cluster page.
type partitionStateJSON struct {
	Topic           string  `json:"topic"`
	Internal        bool    `json:"internal"`
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	Error           string  `json:"error,omitempty"`
}

type clusterStatusJSON struct {
	ClusterID  string             `json:"cluster_id"`
	Controller int32              `json:"controller"`
	Brokers    []brokerStatusJSON `json:"brokers"`
	// MissingBrokers are broker ids that partitions name as replicas but
	// the cluster does not list (down, or fenced by the controller).
	MissingBrokers []int32    `json:"missing_brokers"`
	Quorum         quorumJSON `json:"quorum"`
	Topics         int        `json:"topics"`
	Partitions     int        `json:"partitions"`
	// UnderReplicated have fewer in-sync replicas than replicas; Offline
	// have no leader. A partition can be in both.
	UnderReplicated []partitionStateJSON `json:"under_replicated"`
	Offline         []partitionStateJSON `json:"offline"`
}

func (c *Console) getClusterStatus(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	md, err := c.admin(ctx).BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	tds, err := c.freshTopics(ctx)
	if err != nil {
		return err
	}
	out := clusterStatusJSON{ClusterID: md.Cluster, Controller: md.Controller}
	for _, b := range brokersOf(md.Brokers) {
		out.Brokers = append(out.Brokers, brokerStatusJSON{brokerJSON: b, Controller: b.ID == md.Controller})
	}
	partitionStates(&out, tds)
	out.Quorum = c.describeQuorum(ctx, md.Controller)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// partitionStates fills the partition counts, the under-replicated and
// offline partitions and the missing brokers from the topics' metadata.
func partitionStates(out *clusterStatusJSON, tds kadm.TopicDetails) {
	out.UnderReplicated, out.Offline, out.MissingBrokers = []partitionStateJSON{}, []partitionStateJSON{}, []int32{}
	listed := map[int32]bool{}
	for _, b := range out.Brokers {
		listed[b.ID] = true
	}
	missing := map[int32]bool{}
	for _, name := range tds.Names() { // sorted
		td := tds[name]
		if td.Err != nil {
			continue
		}
		out.Topics++
		for _, pd := range td.Partitions.Sorted() {
			out.Partitions++
			ps := partitionStateJSON{Topic: name, Internal: td.IsInternal, Partition: pd.Partition, Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch,
				Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR), OfflineReplicas: nonNil(pd.OfflineReplicas)}
			if pd.Err != nil {
				ps.Error = pd.Err.Error()
			}
			for _, id := range pd.Replicas {
				if !listed[id] {
					missing[id] = true
				}
			}
			if underReplicated(pd) {
				out.UnderReplicated = append(out.UnderReplicated, ps)
			}
			if pd.Leader < 0 {
				out.Offline = append(out.Offline, ps)
			}
		}
	}
	for id := range missing {
		out.MissingBrokers = append(out.MissingBrokers, id)
	}
	sort.Slice(out.MissingBrokers, func(i, j int) bool { return out.MissingBrokers[i] < out.MissingBrokers[j] })
}

// underReplicated: fewer replicas in sync than assigned (Kafka's
// UnderReplicatedPartitions).
func underReplicated(pd kadm.PartitionDetail) bool { return len(pd.ISR) < len(pd.Replicas) }

// describeQuorum asks the controller for the metadata quorum, and the
// leader it names if it has lost the lead since. Failures are reported
// in the result, not returned: the rest of the page still shows.
func (c *Console) describeQuorum(ctx context.Context, controller int32) quorumJSON {
	target := controller
	for attempt := 0; attempt < 3; attempt++ {
		if target < 0 {
			return quorumJSON{Error: "no controller known: the cluster has no metadata quorum leader right now"}
		}
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = metadataQuorumTopic
		rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		kresp, err := c.client(ctx).Broker(int(target)).Request(ctx, req)
		if err != nil {
			if !c.servesAPI(ctx, target, req.Key()) {
				return quorumJSON{Message: fmt.Sprintf("broker %d does not serve DescribeQuorum (API 55): the cluster is not a KRaft cluster, or too old to describe its quorum", target)}
			}
			return quorumJSON{Error: fmt.Sprintf("describe quorum (broker %d): %v", target, err)}
		}
		q, next := quorumFrom(kresp.(*kmsg.DescribeQuorumResponse), target)
		if next < 0 {
			return q
		}
		target = next
	}
	return quorumJSON{Error: "describe quorum: the quorum's leader keeps moving; try again"}
}

// servesAPI reports whether broker id advertises the API key (true when
// it cannot be told: the error is then not explained as unsupported).
func (c *Console) servesAPI(ctx context.Context, id int32, key int16) bool {
	vs, err := c.admin(ctx).ApiVersions(ctx)
	if err != nil {
		return true
	}
	v, ok := vs[id]
	if !ok || v.Err != nil {
		return true
	}
	_, has := v.KeyMaxVersion(key)
	return has
}

// quorumFrom reads a DescribeQuorum answer from broker target. next is
// the broker to ask instead (the leader the answer names, when target is
// not it), or -1 when q is the result.
func quorumFrom(resp *kmsg.DescribeQuorumResponse, target int32) (q quorumJSON, next int32) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return quorumJSON{Error: fmt.Sprintf("describe quorum (broker %d): %v%s", target, err, msgOf(resp.ErrorMessage))}, -1
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return quorumJSON{Error: fmt.Sprintf("describe quorum: broker %d answered %d topics for one partition asked", target, len(resp.Topics))}, -1
	}
	p := resp.Topics[0].Partitions[0]
	switch err := kerr.ErrorForCode(p.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		// A broker without a metadata quorum: a single node of a Strom
		// from before a single node was a quorum of one voter.
		return quorumJSON{Message: "no metadata quorum: the broker is a single node of an older Strom, whose metadata is a local file"}, -1
	case errors.Is(err, kerr.NotLeaderForPartition) && p.LeaderID >= 0 && p.LeaderID != target:
		return quorumJSON{}, p.LeaderID
	default:
		return quorumJSON{Error: fmt.Sprintf("describe quorum (broker %d): %v%s", target, err, msgOf(p.ErrorMessage))}, -1
	}
	q = quorumJSON{Available: true, Leader: p.LeaderID, Epoch: p.LeaderEpoch, HighWatermark: p.HighWatermark,
		Voters: replicasOf(p.CurrentVoters, p.HighWatermark), Observers: replicasOf(p.Observers, p.HighWatermark)}
	return q, -1
}

func replicasOf(rs []kmsg.DescribeQuorumResponseTopicPartitionReplicaState, hw int64) []quorumReplicaJSON {
	out := make([]quorumReplicaJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, quorumReplicaJSON{ID: r.ReplicaID, LogEndOffset: r.LogEndOffset, Lag: max(hw-r.LogEndOffset, 0),
			LastFetchMs: knownMs(r.LastFetchTimestamp), LastCaughtUpMs: knownMs(r.LastCaughtUpTimestamp)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// knownMs is nil for Kafka's "unknown" timestamp (-1).
func knownMs(ms int64) *int64 {
	if ms < 0 {
		return nil
	}
	return &ms
}

func msgOf(m *string) string {
	if m == nil || *m == "" {
		return ""
	}
	return ": " + *m
}
