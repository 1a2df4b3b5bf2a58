package group

import "errors"

// Domain errors. The protocol handlers map each to its Kafka error code
// (internal/kafka/handler/errors.go); nothing in this package knows the
// codes. Errors returned by the coordinator wrap one of these, so compare
// with errors.Is.
var (
	// ErrInvalidGroupID: the group id is empty or longer than MaxGroupIDLen.
	ErrInvalidGroupID = errors.New("group: invalid group id")
	// ErrUnknownMemberID: the member id (or instance id) is not in the group.
	ErrUnknownMemberID = errors.New("group: unknown member id")
	// ErrIllegalGeneration: the request's generation is not the group's.
	ErrIllegalGeneration = errors.New("group: illegal generation")
	// ErrRebalanceInProgress: the group is rebalancing; the member must
	// rejoin.
	ErrRebalanceInProgress = errors.New("group: rebalance in progress")
	// ErrFencedInstanceID: another member id now holds this static
	// member's instance id.
	ErrFencedInstanceID = errors.New("group: fenced instance id")
	// ErrMemberIDRequired: a new member must join again with the member id
	// it was given (KIP-394, JoinGroup v4+).
	ErrMemberIDRequired = errors.New("group: member id required")
	// ErrInconsistentProtocol: the protocol type or protocols do not match
	// the group's.
	ErrInconsistentProtocol = errors.New("group: inconsistent group protocol")
	// ErrInvalidSessionTimeout: the session timeout is outside the broker's
	// bounds (group.min/max.session.timeout.ms).
	ErrInvalidSessionTimeout = errors.New("group: invalid session timeout")
	// ErrGroupIDNotFound: the group does not exist.
	ErrGroupIDNotFound = errors.New("group: group id not found")
	// ErrNonEmptyGroup: the group still has members.
	ErrNonEmptyGroup = errors.New("group: group is not empty")
	// ErrGroupSubscribedToTopic: the group's members consume the topic
	// whose offsets were to be deleted.
	ErrGroupSubscribedToTopic = errors.New("group: group is subscribed to the topic")
	// ErrOffsetMetadataTooLarge: the commit's metadata string is longer
	// than offset.metadata.max.bytes.
	ErrOffsetMetadataTooLarge = errors.New("group: offset metadata too large")
	// ErrInvalidCommitOffsetSize: the commit does not fit in one record
	// batch of the offsets log.
	ErrInvalidCommitOffsetSize = errors.New("group: commit too large for the offsets log")
	// ErrCoordinatorNotAvailable: the offsets log failed or the group died
	// while the request waited; the client retries.
	ErrCoordinatorNotAvailable = errors.New("group: coordinator not available")
	// ErrNotCoordinator: this broker does not coordinate the group (it
	// does not lead the offsets partition, or the coordinator is shutting
	// down); the client finds the coordinator again.
	ErrNotCoordinator = errors.New("group: not coordinator")
	// ErrCoordinatorLoading: the offsets log is still being replayed.
	ErrCoordinatorLoading = errors.New("group: coordinator loading")
	// ErrUnsupportedAssignor: a KIP-848 member asked for a server assignor
	// that does not exist.
	ErrUnsupportedAssignor = errors.New("group: unsupported assignor")
	// ErrFencedMemberEpoch: a KIP-848 member's epoch is older than the
	// group's view of it; it must rejoin with epoch 0.
	ErrFencedMemberEpoch = errors.New("group: fenced member epoch")
	// ErrStaleMemberEpoch: an offset commit from a KIP-848 member carries
	// an epoch that is not its current one.
	ErrStaleMemberEpoch = errors.New("group: stale member epoch")
	// ErrUnreleasedInstanceID: a KIP-848 static member joined while the
	// previous holder of its instance id has not left.
	ErrUnreleasedInstanceID = errors.New("group: unreleased instance id")
	// ErrInvalidRequest: the request is malformed for its protocol.
	ErrInvalidRequest = errors.New("group: invalid request")
	// ErrInvalidRegularExpression: a KIP-848 member's topic regex does not
	// compile.
	ErrInvalidRegularExpression = errors.New("group: invalid regular expression")
	// ErrUnsupportedVersion: a KIP-848 member committed with an
	// OffsetCommit version that cannot carry its member epoch (before v9).
	ErrUnsupportedVersion = errors.New("group: unsupported version for this group")
)
