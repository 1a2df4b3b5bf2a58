package handler

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// DeleteRecords: moves partitions' log start offsets forward, making the
// records below them unreadable; segments wholly below are deleted.
//
// Behavior:
//   - Offset -1 means the high watermark. An offset below -1 or above the
//     high watermark is OFFSET_OUT_OF_RANGE. An offset at or below the
//     current start changes nothing; LowWatermark is the start offset after
//     the call.
//   - The start offsets are advanced in request order on the reader
//     goroutine; the reply then checkpoints them (cluster.Checkpoint, off
//     the reader) before answering, so an acknowledged delete survives a
//     crash. A failed checkpoint answers the advanced partitions
//     KAFKA_STORAGE_ERROR (LowWatermark -1): in memory the start has moved.
//   - On a replicated partition the move is a raft entry every replica
//     applies at commit (internal/replica); the leader answers once it
//     applied it (on the reader goroutine, up to 30 s; TimeoutMillis is
//     ignored), a follower NOT_LEADER_OR_FOLLOWER. The start moves by
//     whole batches there: LowWatermark is the base of the batch holding
//     the offset. POLICY_VIOLATION when a configuration change of the
//     group lies above the new start (retry later).
//
// Version notes: v1 is v0 (throttle behaviour); v2+ flexible.
func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	type moved struct{ ti, pi int }
	var advanced []moved
	for ti, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := h.c.Partition(rt.Topic, rp.Partition)
			if err == nil {
				hw, off := p.HighWatermark(), rp.Offset
				if off == -1 {
					off = hw
				}
				if off < 0 || off > hw {
					err = fmt.Errorf("offset %d outside [0, high watermark %d]: %w", rp.Offset, hw, kerr.OffsetOutOfRange)
				} else {
					sp.LowWatermark, err = p.DeleteRecords(off)
				}
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.LowWatermark = -1
			} else {
				advanced = append(advanced, moved{ti, pi})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(advanced) == 0 {
		return now(resp)
	}
	return server.Reply{Finish: func(context.Context) kmsg.Response {
		if err := h.c.Checkpoint(); err != nil {
			h.log.Error("checkpoint after DeleteRecords failed", "err", err)
			for _, m := range advanced {
				sp := &resp.Topics[m.ti].Partitions[m.pi]
				sp.ErrorCode, sp.LowWatermark = kerr.KafkaStorageError.Code, -1
			}
		}
		return resp
	}}, nil
}
