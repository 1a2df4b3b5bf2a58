package handler

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
)

// ListTransactions: the transactional ids this coordinator knows, with
// their producer id and state (KIP-664), filtered by state names and
// producer ids (empty: all), v1+ by duration (only transactions running
// for longer than DurationFilterMillis; -1: no filter), v2+ by a regular
// expression on the id (RE2 syntax, as Go has it; a bad pattern is
// INVALID_REGULAR_EXPRESSION).
//
// Behavior: a state name Kafka does not know is listed in
// UnknownStateFilters, and matches nothing.
//
// Version notes: v1 duration filter; v2 id pattern.
func init() { register(66, 0, 2, handleListTransactions) }

func handleListTransactions(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ListTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	if h.txns == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	var states []txn.State
	for _, s := range r.StateFilters {
		st, ok := txn.ParseState(s)
		if !ok {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
			continue
		}
		states = append(states, st)
	}
	if len(r.StateFilters) > 0 && len(states) == 0 {
		return now(resp) // only unknown states: nothing matches
	}
	var re *regexp.Regexp
	if req.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		var err error
		if re, err = regexp.Compile(*r.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			h.log.Debug("list transactions: bad pattern", "err", fmt.Errorf("%q: %w", *r.TransactionalIDPattern, err))
			return now(resp)
		}
	}
	nowMs := time.Now().UnixMilli()
	for _, d := range h.txns.List(states, r.ProducerIDFilters) {
		if req.Version >= 1 && r.DurationFilterMillis >= 0 && (d.StartMs < 0 || nowMs-d.StartMs <= r.DurationFilterMillis) {
			continue
		}
		if re != nil && !re.MatchString(d.ID) {
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = d.ID, d.ProducerID, d.State.String()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return now(resp)
}
