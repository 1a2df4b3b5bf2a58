package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// DescribeProducers: the idempotent and transactional producers each
// partition knows (KIP-664): producer id, epoch, last sequence and
// timestamp, and the first offset of the producer's open transaction
// (-1: none), which is how kafka-transactions.sh finds hanging ones.
//
// Behavior: an unknown partition is UNKNOWN_TOPIC_OR_PARTITION for it.
// CoordinatorEpoch is 0 for a producer with an open transaction (one
// coordinator that never changes), -1 otherwise.
//
// Version notes: v0 only.
func init() { register(61, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeProducersRequest)
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			p, err := h.c.Partition(rt.Topic, idx)
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, ps := range p.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = ps.ProducerID, int32(ps.Epoch)
				ap.LastSequence, ap.LastTimestamp = ps.LastSequence, ps.LastTimestamp
				ap.CurrentTxnStartOffset, ap.CoordinatorEpoch = ps.TxnStart, -1
				if ps.TxnStart >= 0 {
					ap.CoordinatorEpoch = 0
				}
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp)
}
