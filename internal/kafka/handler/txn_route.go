package handler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/partition"
)

// Where the transaction coordinator is, for the handlers that act for a
// transaction at a broker that may not coordinate it: Produce (KIP-890
// verification; transactions v2's implicit add) and TxnOffsetCommit
// (transactions v2's implicit AddOffsetsToTxn). On a single node, and at
// the broker leading __transaction_state-0, the coordinator is in
// process; elsewhere in a cluster it is asked through Config.TxnPeer with
// AddPartitionsToTxn v4+, as Kafka's brokers ask theirs.

// txnCoordinator says where the transaction coordinator is: local when
// this broker's coordinator answers (a single node, or this broker leads
// __transaction_state-0), else the broker that does. An error means no
// broker leads the log now (a retriable condition).
func (h *Handler) txnCoordinator() (lead int32, local bool, err error) {
	if h.remoteTxnCoordinator != nil {
		lead, err := h.remoteTxnCoordinator()
		return lead, false, err
	}
	if !h.c.Replicated() {
		return h.c.NodeID(), true, nil
	}
	lead, err = h.c.TxnStateLeader()
	if err != nil {
		return -1, false, err
	}
	return lead, lead == h.c.NodeID(), nil
}

// addTxnTimeout bounds an add asked of the coordinator on another broker:
// the connection's reader waits for it, as for an in-process add's fsync.
const addTxnTimeout = 5 * time.Second

// addToTxn adds parts to transactional id's transaction of producer pid at
// epoch for transactions v2 (Produce v12+, TxnOffsetCommit v5+), starting
// the transaction if none is ongoing, and returns each partition's error
// or one for all. In process when this broker coordinates; else the
// coordinator's broker is asked (TxnPeer.Add, AddPartitionsToTxn v5 with
// VerifyOnly false, as Kafka 4.0's brokers do). Either way the addition is
// durable at the coordinator when this returns nil for a partition.
//
// This is not the guard against late writes: the append's verification
// under the partition's lock is (verifyTxn). A write delayed past its
// transaction's end carries an epoch the end bumped, so the coordinator
// refuses to add it (PRODUCER_FENCED) and the partition, which got the
// end's marker at the new epoch, refuses it too; an add that succeeded
// just before an end is caught by the verification, which finds the
// transaction ended.
//
// A coordinator that cannot answer now (down, moving, loading, or still
// completing the previous transaction) is partition.ErrTxnVerifyUnavailable
// (retriable for the producer, NOT_ENOUGH_REPLICAS as Kafka answers a
// produce whose verification failed so), never an error that makes the
// producer abort.
func (h *Handler) addToTxn(ctx context.Context, id string, pid int64, epoch int16, parts []txn.TopicPartition) ([]error, error) {
	lead, local, err := h.txnCoordinator()
	var errs []error
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: the transaction coordinator: %v", partition.ErrTxnVerifyUnavailable, err)
	case local:
		errs, err = h.txns.AddPartitions(ctx, id, pid, epoch, parts)
	case h.cfg.TxnPeer == nil:
		return nil, fmt.Errorf("the transaction coordinator is broker %d and this broker cannot ask it", lead)
	default:
		ctx, cancel := context.WithTimeout(ctx, addTxnTimeout)
		defer cancel()
		errs, err = h.cfg.TxnPeer.Add(ctx, lead, id, pid, epoch, parts)
	}
	if err != nil {
		return nil, retriableAdd(err)
	}
	for i := range errs {
		if errs[i] != nil {
			errs[i] = retriableAdd(errs[i])
		}
	}
	return errs, nil
}

// retriableAdd makes the coordinator's "not now" answers to an implicit
// add partition.ErrTxnVerifyUnavailable, so that the producer retries the
// write instead of aborting: the in-process coordinator's domain errors
// and the Kafka codes of a remote one alike.
func retriableAdd(err error) error {
	switch {
	case errors.Is(err, partition.ErrTxnVerifyUnavailable):
		return err
	case errors.Is(err, txn.ErrConcurrentTransactions), errors.Is(err, kerr.ConcurrentTransactions),
		errors.Is(err, txn.ErrCoordinatorLoading), errors.Is(err, kerr.CoordinatorLoadInProgress),
		errors.Is(err, txn.ErrNotCoordinator), errors.Is(err, kerr.NotCoordinator),
		errors.Is(err, txn.ErrCoordinatorNotAvailable), errors.Is(err, kerr.CoordinatorNotAvailable),
		errors.Is(err, context.DeadlineExceeded),
		// A remote coordinator's answer for the partitions of a request
		// it refused because of another one (an unknown partition):
		// nothing was added, the retry asks again.
		errors.Is(err, kerr.OperationNotAttempted):
		return fmt.Errorf("%w: add to the transaction: %v", partition.ErrTxnVerifyUnavailable, err)
	}
	return err
}
