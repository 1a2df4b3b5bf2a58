package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/partition"
)

// WriteTxnMarkers: writes COMMIT or ABORT markers for producers to
// partitions. In a cluster the transaction coordinator sends it to the
// leaders of its transactions' partitions on other brokers (the broker's
// txnPeer; its own partitions it marks in process); it also serves the
// admin side: kafka-transactions.sh abort (and `strom transactions abort`)
// end a hanging transaction on a partition by sending an ABORT marker with
// the producer id and epoch DescribeProducers shows.
//
// Behavior: each partition gets its marker (partition.AppendMarker), then
// the answer waits (in Reply.Finish) until every marker is durable. An
// unknown partition is UNKNOWN_TOPIC_OR_PARTITION, an epoch older than the
// producer's INVALID_PRODUCER_EPOCH. A marker for a producer with nothing
// open on the partition is still written, as in Kafka.
//
// A marker committed in the offsets partition is handed to the group
// coordinator, which commits or drops the producer's pending offsets
// there (TxnOffsetCommit).
//
// Version notes: v1+ flexible; v2 (TransactionVersion, KIP-890 part 2)
// is not served.
func init() { register(27, 0, 1, handleWriteTxnMarkers) }

func handleWriteTxnMarkers(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.WriteTxnMarkersRequest)
	resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type written struct {
		p          *partition.Partition
		off        int64
		epoch      int32
		mi, ti, pi int
	}
	var waits []written
	for mi, m := range r.Markers {
		sm := kmsg.NewWriteTxnMarkersResponseMarker()
		sm.ProducerID = m.ProducerID
		for ti, t := range m.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = t.Topic
			for pi, idx := range t.Partitions {
				sp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = idx
				p, err := h.c.Partition(t.Topic, idx)
				var res partition.MarkerResult
				if err == nil {
					res, err = p.AppendMarker(m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
				}
				if err != nil {
					sp.ErrorCode = errorCode(err)
				} else {
					waits = append(waits, written{p, res.Offset, res.LeaderEpoch, mi, ti, pi})
				}
				st.Partitions = append(st.Partitions, sp)
			}
			sm.Topics = append(sm.Topics, st)
		}
		resp.Markers = append(resp.Markers, sm)
	}
	if len(waits) == 0 {
		return now(resp)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		for _, w := range waits {
			if err := w.p.WaitCommitted(ctx, w.off, w.epoch); err != nil {
				resp.Markers[w.mi].Topics[w.ti].Partitions[w.pi].ErrorCode = errorCode(err)
				continue
			}
			h.markerWritten(w.p, r.Markers[w.mi].ProducerID, r.Markers[w.mi].Committed, w.off)
		}
		return resp
	}}, nil
}

// markerWritten tells the group coordinator of a marker committed in the
// offsets partition.
func (h *Handler) markerWritten(p *partition.Partition, pid int64, commit bool, offset int64) {
	if topic, index := group.GroupPartition(""); h.groups != nil && p.Topic == topic && p.Index == index {
		h.groups.TxnMarker(pid, commit, offset)
	}
}
