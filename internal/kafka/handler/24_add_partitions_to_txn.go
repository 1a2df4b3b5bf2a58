package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
)

// AddPartitionsToTxn: adds partitions to a producer's transaction,
// starting one if none is ongoing.
//
// Behavior:
//   - The transactional id, producer id and epoch must be the
//     coordinator's: an older epoch is PRODUCER_FENCED (v2+;
//     INVALID_PRODUCER_EPOCH before), another producer id
//     INVALID_PRODUCER_ID_MAPPING, an unknown id the same.
//   - A partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION and the
//     others OPERATION_NOT_ATTEMPTED: nothing is added, as in Kafka.
//   - While the previous transaction's markers are being written the
//     answer is CONCURRENT_TRANSACTIONS (clients retry).
//   - The answer waits (in Reply.Finish) until the transaction's new
//     state is durable in __transaction_state.
//   - v4+ batches several transactions; VerifyOnly (Kafka brokers asking
//     the coordinator before a transactional produce, KIP-890) only checks
//     that each partition is in the ongoing transaction (INVALID_TXN_STATE
//     otherwise) and writes nothing. This broker verifies in process.
//
// Version notes: v1 is v0; v2 PRODUCER_FENCED; v3+ flexible; v4 batched
// transactions and VerifyOnly, top-level error code; v5 is v4 (it allows
// TRANSACTION_ABORTABLE, which is never returned).
func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.AddPartitionsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	fenced := req.Version >= 2
	if req.Version < 4 {
		var parts []txn.TopicPartition
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
			errs, err := h.addPartitions(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, false, parts)
			resp.Topics = addPartitionsAnswer(parts, errs, err, fenced)
			return resp
		}}, nil
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		for _, rt := range r.Transactions {
			var parts []txn.TopicPartition
			for _, t := range rt.Topics {
				for _, p := range t.Partitions {
					parts = append(parts, txn.TopicPartition{Topic: t.Topic, Partition: p})
				}
			}
			errs, err := h.addPartitions(ctx, rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly, parts)
			st := kmsg.NewAddPartitionsToTxnResponseTransaction()
			st.TransactionalID = rt.TransactionalID
			var topics []kmsg.AddPartitionsToTxnResponseTransactionTopic
			for i, tp := range parts {
				code := int16(0)
				switch {
				case err != nil:
					code = fencedFor(errorCode(err), fenced)
				case errs[i] != nil:
					code = errorCode(errs[i])
				}
				var tt *kmsg.AddPartitionsToTxnResponseTransactionTopic
				for j := range topics {
					if topics[j].Topic == tp.Topic {
						tt = &topics[j]
					}
				}
				if tt == nil {
					topics = append(topics, kmsg.AddPartitionsToTxnResponseTransactionTopic{Topic: tp.Topic})
					tt = &topics[len(topics)-1]
				}
				sp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				sp.Partition, sp.ErrorCode = tp.Partition, code
				tt.Partitions = append(tt.Partitions, sp)
			}
			st.Topics = topics
			resp.Transactions = append(resp.Transactions, st)
		}
		return resp
	}}, nil
}

// addPartitions runs one transaction's AddPartitionsToTxn (or its
// verification): per-partition errors, or err for all of them.
func (h *Handler) addPartitions(ctx context.Context, id string, pid int64, epoch int16, verifyOnly bool, parts []txn.TopicPartition) ([]error, error) {
	if h.txns == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	if verifyOnly {
		return h.txns.VerifyPartitions(id, pid, epoch, parts), nil
	}
	errs, err := h.txns.AddPartitions(ctx, id, pid, epoch, parts)
	if err == nil {
		failed := false
		for _, e := range errs {
			failed = failed || e != nil
		}
		for i := range errs {
			if failed && errs[i] == nil {
				errs[i] = kerr.OperationNotAttempted
			}
		}
	}
	return errs, err
}

// addPartitionsAnswer lays out the v0-3 answer, topics in request order.
func addPartitionsAnswer(parts []txn.TopicPartition, errs []error, err error, fenced bool) []kmsg.AddPartitionsToTxnResponseTopic {
	var out []kmsg.AddPartitionsToTxnResponseTopic
	for i, tp := range parts {
		code := int16(0)
		switch {
		case err != nil:
			code = fencedFor(errorCode(err), fenced)
		case errs[i] != nil:
			code = errorCode(errs[i])
		}
		var list *[]kmsg.AddPartitionsToTxnResponseTopicPartition
		for j := range out {
			if out[j].Topic == tp.Topic {
				list = &out[j].Partitions
			}
		}
		if list == nil {
			out = append(out, kmsg.AddPartitionsToTxnResponseTopic{Topic: tp.Topic})
			list = &out[len(out)-1].Partitions
		}
		sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
		sp.Partition, sp.ErrorCode = tp.Partition, code
		*list = append(*list, sp)
	}
	return out
}
