package handler

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// OffsetForLeaderEpoch: the end offset of a leader epoch, which consumers
// use to detect log truncation (KIP-320) after a leader change.
//
// Behavior: a partition has had one leader epoch, 0, starting at its log
// start offset; answers follow Kafka's LeaderEpochFileCache.endOffsetFor:
//   - epoch 0 (ours, the latest): LeaderEpoch 0, EndOffset the log end
//     offset;
//   - epoch -1 (undefined) or an epoch above ours: -1/-1, no error;
//   - any other (older) epoch: that epoch with the start offset of the
//     first epoch after it (epoch 0: the log start offset).
//
// A replicated partition (a raft group) has had many epochs, one per term
// whose leader wrote batches: an older epoch's end is where the first batch
// of a later term starts in the log (Partition.EpochEnd), so a consumer
// resuming from an offset committed under an earlier leader sees no
// truncation where there was none (answering the log start made franz-go
// rewind to it).
//
// CurrentLeaderEpoch (v2+) other than ours is FENCED_LEADER_EPOCH (older)
// or UNKNOWN_LEADER_EPOCH (newer); negative means not given. Unknown topics
// and partitions are UNKNOWN_TOPIC_OR_PARTITION.
//
// Version notes: v1 LeaderEpoch in the response; v2 CurrentLeaderEpoch and
// throttle; v3 ReplicaID (ignored: consumers and followers get the same
// answer on one node); v4+ flexible.
func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			p, err := h.c.Partition(rt.Topic, rp.Partition)
			if err == nil && req.Version >= 2 {
				err = leaderEpochError(rp.CurrentLeaderEpoch, p.LeaderEpoch())
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			switch ours := p.LeaderEpoch(); {
			case rp.LeaderEpoch == -1 || rp.LeaderEpoch > ours: // undefined, or newer than any we know
				sp.LeaderEpoch, sp.EndOffset = -1, -1
			case rp.LeaderEpoch == ours:
				sp.LeaderEpoch, sp.EndOffset = ours, p.EndOffset()
			default: // older than ours
				if e, end, ok := p.EpochEnd(rp.LeaderEpoch); ok {
					// A replica of a raft group: from the terms in its log.
					sp.LeaderEpoch, sp.EndOffset = e, end
				} else {
					// A single copy has one epoch: where that one starts.
					sp.LeaderEpoch, sp.EndOffset = rp.LeaderEpoch, p.StartOffset()
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp)
}

// leaderEpochError checks a request's CurrentLeaderEpoch against the
// partition's (a negative one was not given), as Kafka fences stale clients.
func leaderEpochError(requested, current int32) error {
	switch {
	case requested < 0 || requested == current:
		return nil
	case requested < current:
		return fmt.Errorf("request has leader epoch %d, partition %d: %w", requested, current, kerr.FencedLeaderEpoch)
	default:
		return fmt.Errorf("request has leader epoch %d, partition %d: %w", requested, current, kerr.UnknownLeaderEpoch)
	}
}
