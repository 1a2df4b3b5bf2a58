package handler

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
)

// errorTable maps domain errors to Kafka error codes, most specific first.
var errorTable = []struct {
	err  error
	code *kerr.Error
}{
	{metadata.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{cluster.ErrUnknownPartition, kerr.UnknownTopicOrPartition},
	{cluster.ErrNotLeader, kerr.NotLeaderForPartition},
	{cluster.ErrLeaderNotAvailable, kerr.LeaderNotAvailable},
	{metadata.ErrNoQuorum, kerr.RequestTimedOut},
	{metadata.ErrTokenNotFound, kerr.DelegationTokenNotFound},
	{metadata.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{metadata.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{metadata.ErrNoReassignment, kerr.NoReassignmentInProgress},
	{cluster.ErrElectionNotNeeded, kerr.ElectionNotNeeded},
	{cluster.ErrPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable},
	{metadata.ErrTopicExists, kerr.TopicAlreadyExists},
	{metadata.ErrInvalidTopic, kerr.InvalidTopicException},
	{metadata.ErrInvalidPartitions, kerr.InvalidPartitions},
	{metadata.ErrInvalidConfig, kerr.InvalidConfig},
	{partition.ErrNotLeader, kerr.NotLeaderForPartition},
	{partition.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{partition.ErrNotReplicatedYet, kerr.PolicyViolation},
	{partition.ErrStartBlocked, kerr.PolicyViolation},
	// A batch a leader change cut away: retriable, the idempotent
	// producer's retry goes to the new leader.
	{partition.ErrTruncated, kerr.NotLeaderForPartition},
	{partition.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{partition.ErrBatchTooLarge, kerr.MessageTooLarge},
	{partition.ErrEmptyAppend, kerr.InvalidRecord},
	{partition.ErrMissingKey, kerr.InvalidRecord},
	// Both storage errors are KAFKA_STORAGE_ERROR, retriable for clients:
	// a full disk (ErrStorage) clears when space returns, a failed fsync
	// (ErrFailed) when the broker restarts and recovers the log.
	{partition.ErrFailed, kerr.KafkaStorageError},
	{partition.ErrStorage, kerr.KafkaStorageError},
	{partition.ErrClosed, kerr.NotLeaderForPartition},
	{partition.ErrCorrupt, kerr.CorruptMessage},
	{record.ErrCorrupt, kerr.CorruptMessage},
	{record.ErrShortBuffer, kerr.CorruptMessage},
	{record.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{record.ErrInvalidRecord, kerr.InvalidRecord},
	{record.ErrTooLarge, kerr.MessageTooLarge},
	{record.ErrUnsupportedCodec, kerr.UnsupportedCompressionType},
	{partition.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{partition.ErrProducerFenced, kerr.InvalidProducerEpoch},
	// A produce refused by the coordinator's verification says why when
	// the producer is fenced; otherwise INVALID_TXN_STATE.
	{txn.ErrProducerFenced, kerr.ProducerFenced},
	{txn.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{partition.ErrTxnNotVerified, kerr.InvalidTxnState},
	{partition.ErrTxnVerifyUnavailable, kerr.NotEnoughReplicas},
	{txn.ErrInvalidTxnID, kerr.InvalidRequest},
	{txn.ErrUnknownTxnID, kerr.InvalidProducerIDMapping},
	{txn.ErrProducerIDMismatch, kerr.InvalidProducerIDMapping},
	{txn.ErrInvalidTxnState, kerr.InvalidTxnState},
	{txn.ErrConcurrentTransactions, kerr.ConcurrentTransactions},
	{txn.ErrInvalidTimeout, kerr.InvalidTransactionTimeout},
	{txn.ErrUnknownPartition, kerr.UnknownTopicOrPartition},
	{txn.ErrNotInTxn, kerr.InvalidTxnState},
	{txn.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	{txn.ErrNotCoordinator, kerr.NotCoordinator},
	{txn.ErrCoordinatorLoading, kerr.CoordinatorLoadInProgress},
	{group.ErrInvalidGroupID, kerr.InvalidGroupID},
	{group.ErrUnknownMemberID, kerr.UnknownMemberID},
	{group.ErrIllegalGeneration, kerr.IllegalGeneration},
	{group.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{group.ErrFencedInstanceID, kerr.FencedInstanceID},
	{group.ErrMemberIDRequired, kerr.MemberIDRequired},
	{group.ErrInconsistentProtocol, kerr.InconsistentGroupProtocol},
	{group.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout},
	{group.ErrGroupIDNotFound, kerr.GroupIDNotFound},
	{group.ErrNonEmptyGroup, kerr.NonEmptyGroup},
	{group.ErrGroupSubscribedToTopic, kerr.GroupSubscribedToTopic},
	{group.ErrOffsetMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{group.ErrInvalidCommitOffsetSize, kerr.InvalidCommitOffsetSize},
	{group.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	{group.ErrNotCoordinator, kerr.NotCoordinator},
	{group.ErrCoordinatorLoading, kerr.CoordinatorLoadInProgress},
	{group.ErrUnsupportedAssignor, kerr.UnsupportedAssignor},
	{group.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{group.ErrStaleMemberEpoch, kerr.StaleMemberEpoch},
	{group.ErrUnreleasedInstanceID, kerr.UnreleasedInstanceID},
	{group.ErrInvalidRequest, kerr.InvalidRequest},
	{group.ErrInvalidRegularExpression, kerr.InvalidRegularExpression},
	{group.ErrUnsupportedVersion, kerr.UnsupportedVersion},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}

// errorCode returns the Kafka error code for err (0 for nil): a kerr error
// (from the handlers' own checks) is passed through, domain errors are
// looked up in errorTable, and anything else is UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// KAFKA_STORAGE_ERROR came with KIP-112 (Produce v4, Fetch v6, Metadata
// v5); older clients do not know the code, and Kafka answers them
// NOT_LEADER_FOR_PARTITION instead, which they retry after a metadata
// refresh.
func storageErrorFor(code int16, known bool) int16 {
	if code == kerr.KafkaStorageError.Code && !known {
		return kerr.NotLeaderForPartition.Code
	}
	return code
}

// errorCodeFor is errorCode for a response whose version may predate
// KAFKA_STORAGE_ERROR (storageKnown false): the one place a handler turns
// a partition's error into its code.
func errorCodeFor(err error, storageKnown bool) int16 {
	return storageErrorFor(errorCode(err), storageKnown)
}

// fencedFor is code for a transaction API whose version may predate
// PRODUCER_FENCED (KIP-588: InitProducerId v4, AddPartitionsToTxn,
// AddOffsetsToTxn and EndTxn v2, TxnOffsetCommit v3); older clients get
// INVALID_PRODUCER_EPOCH, as Kafka answers them.
func fencedFor(code int16, known bool) int16 {
	if code == kerr.ProducerFenced.Code && !known {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// errorMessage is the text for responses that carry one: nil when there is
// no error.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
