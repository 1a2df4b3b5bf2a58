package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// apiError is an error with the HTTP status and the machine-readable code
// the client sees. Handlers return it for the user's mistakes; Kafka
// errors are turned into one by httpError.
type apiError struct {
	Status int
	Code   string
	Msg    string
	// Extra fields merged into the JSON body (for example the valid offset
	// range next to an out-of-range error).
	Extra map[string]any
}

func (e *apiError) Error() string { return e.Msg }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Msg: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errGroupsUnsupported is returned when the cluster does not implement
// the consumer group APIs (Strom before its group coordinator, or a
// cluster that hides them).
var errGroupsUnsupported = &apiError{
	Status: http.StatusNotImplemented,
	Code:   "groups_unsupported",
	Msg:    "this Kafka cluster does not support consumer groups (it does not advertise the ListGroups and DescribeGroups APIs)",
}

// kafkaStatus maps the Kafka errors a user can cause to statuses. Any
// other Kafka error is the cluster's failure: 502.
var kafkaStatus = []struct {
	err    *kerr.Error
	status int
	code   string
}{
	{kerr.UnknownTopicOrPartition, http.StatusNotFound, "unknown_topic"},
	{kerr.UnknownTopicID, http.StatusNotFound, "unknown_topic"},
	{kerr.TopicAlreadyExists, http.StatusConflict, "topic_exists"},
	{kerr.InvalidTopicException, http.StatusBadRequest, "invalid_topic"},
	{kerr.InvalidPartitions, http.StatusBadRequest, "invalid_partitions"},
	{kerr.InvalidReplicationFactor, http.StatusBadRequest, "invalid_replication_factor"},
	{kerr.InvalidReplicaAssignment, http.StatusBadRequest, "invalid_replica_assignment"},
	{kerr.InvalidConfig, http.StatusBadRequest, "invalid_config"},
	{kerr.InvalidRequest, http.StatusBadRequest, "invalid_request"},
	{kerr.PolicyViolation, http.StatusBadRequest, "policy_violation"},
	{kerr.InvalidRecord, http.StatusBadRequest, "invalid_record"},
	{kerr.InvalidTimestamp, http.StatusBadRequest, "invalid_timestamp"},
	{kerr.CorruptMessage, http.StatusBadRequest, "invalid_record"},
	{kerr.MessageTooLarge, http.StatusRequestEntityTooLarge, "record_too_large"},
	{kerr.RecordListTooLarge, http.StatusRequestEntityTooLarge, "record_too_large"},
	{kerr.OffsetOutOfRange, http.StatusBadRequest, "offset_out_of_range"},
	{kerr.GroupIDNotFound, http.StatusNotFound, "unknown_group"},
	{kerr.InvalidGroupID, http.StatusBadRequest, "invalid_group"},
	{kerr.NonEmptyGroup, http.StatusConflict, "group_not_empty"},
	{kerr.UnknownMemberID, http.StatusConflict, "group_not_empty"},
	{kerr.IllegalGeneration, http.StatusConflict, "group_not_empty"},
	{kerr.RebalanceInProgress, http.StatusConflict, "group_rebalancing"},
	// A session whose user's password changed or who was deleted: the
	// broker refuses its client's re-authentication; log in again.
	{kerr.SaslAuthenticationFailed, http.StatusUnauthorized, "unauthenticated"},
	{kerr.TopicAuthorizationFailed, http.StatusForbidden, "not_authorized"},
	{kerr.GroupAuthorizationFailed, http.StatusForbidden, "not_authorized"},
	{kerr.ClusterAuthorizationFailed, http.StatusForbidden, "not_authorized"},
	{kerr.TopicDeletionDisabled, http.StatusForbidden, "topic_deletion_disabled"},
	{kerr.UnsupportedVersion, http.StatusNotImplemented, "unsupported"},
	{kerr.RequestTimedOut, http.StatusGatewayTimeout, "kafka_timeout"},
}

// httpError turns any error into the status and body the client sees.
func httpError(err error) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		for _, m := range kafkaStatus {
			if ke == m.err {
				return &apiError{Status: m.status, Code: m.code, Msg: err.Error()}
			}
		}
		return &apiError{Status: http.StatusBadGateway, Code: "kafka_error", Msg: err.Error()}
	}
	if _, ok := errors.AsType[*kadm.AuthError](err); ok {
		return &apiError{Status: http.StatusForbidden, Code: "not_authorized", Msg: err.Error()}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout):
		return &apiError{Status: http.StatusGatewayTimeout, Code: "kafka_timeout", Msg: "the Kafka cluster did not answer in time: " + err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, kgo.ErrClientClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Msg: "the console is shutting down"}
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return &apiError{Status: http.StatusBadGateway, Code: "kafka_unreachable", Msg: "cannot reach the Kafka cluster: " + err.Error()}
	}
	return &apiError{Status: http.StatusBadGateway, Code: "kafka_error", Msg: err.Error()}
}

// writeError writes err as a JSON error body.
func writeError(w http.ResponseWriter, err error) {
	ae := httpError(err)
	body := map[string]any{"error": ae.Msg, "code": ae.Code}
	for k, v := range ae.Extra {
		body[k] = v
	}
	writeJSON(w, ae.Status, body)
}

// writeJSON writes v with the status. Encoding errors mean the client
// went away; there is nothing left to tell it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error: cannot encode the response","code":"internal"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
