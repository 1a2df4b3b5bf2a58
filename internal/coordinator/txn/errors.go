package txn

import "errors"

// The coordinator's errors. The protocol handlers map them to Kafka codes
// (internal/kafka/handler/errors.go); this package knows none.
var (
	// ErrInvalidTxnID: an empty transactional id where one is needed.
	ErrInvalidTxnID = errors.New("txn: invalid transactional id")
	// ErrUnknownTxnID: no transaction state for this id
	// (TRANSACTIONAL_ID_NOT_FOUND; INVALID_PRODUCER_ID_MAPPING for a
	// producer id that does not match it).
	ErrUnknownTxnID = errors.New("txn: unknown transactional id")
	// ErrProducerIDMismatch: the request's producer id is not the one
	// this transactional id holds.
	ErrProducerIDMismatch = errors.New("txn: producer id does not match the transactional id")
	// ErrProducerFenced: the request's epoch is older than the current
	// one: another instance took the transactional id over.
	ErrProducerFenced = errors.New("txn: producer fenced by a newer epoch")
	// ErrInvalidProducerEpoch: the epoch is not the current one (a newer
	// epoch than the coordinator knows, or an end racing a timeout abort).
	ErrInvalidProducerEpoch = errors.New("txn: invalid producer epoch")
	// ErrInvalidTxnState: the request does not fit the transaction's state
	// (EndTxn with nothing ongoing, a commit after an abort, ...).
	ErrInvalidTxnState = errors.New("txn: invalid transaction state")
	// ErrConcurrentTransactions: the previous transaction is still being
	// completed; the client retries.
	ErrConcurrentTransactions = errors.New("txn: the previous transaction is still completing")
	// ErrInvalidTimeout: transaction.timeout.ms above
	// transaction.max.timeout.ms, or not positive.
	ErrInvalidTimeout = errors.New("txn: invalid transaction timeout")
	// ErrUnknownPartition: a partition that does not exist.
	ErrUnknownPartition = errors.New("txn: unknown topic or partition")
	// ErrNotInTxn: a partition or group not added to the ongoing
	// transaction (KIP-890 verification, TxnOffsetCommit without
	// AddOffsetsToTxn).
	ErrNotInTxn = errors.New("txn: not part of the ongoing transaction")
	// ErrCoordinatorNotAvailable: the transaction log cannot be written.
	ErrCoordinatorNotAvailable = errors.New("txn: coordinator not available")
	// ErrCoordinatorLoading: this broker leads the transaction log but has
	// not loaded it yet (it just took the lead); the client retries.
	ErrCoordinatorLoading = errors.New("txn: coordinator loading the transaction log")
	// ErrNotCoordinator: this broker is not the coordinator (another
	// leads the transaction log), or it is closing.
	ErrNotCoordinator = errors.New("txn: not the coordinator")
)
