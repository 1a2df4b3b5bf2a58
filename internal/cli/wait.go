package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// waitNote tells a long-running consumer's user, on stderr, that the
// brokers are out of reach and that it keeps retrying, as
// kafka-console-consumer and kcat do, and when they are back. It is a kgo
// hook (called on kgo's goroutines) and is told of the errors that
// PollFetches returns; one line per outage, not one per retry.
type waitNote struct {
	w    io.Writer
	conn *connFlags

	mu    sync.Mutex
	down  bool
	since time.Time
}

var _ kgo.HookBrokerConnect = (*waitNote)(nil)

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (n *waitNote) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		n.failed(net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port))), err)
		return
	}
	n.recovered()
}

// recovered ends a noted outage, if any, with one line.
func (n *waitNote) recovered() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		n.down = false
		fmt.Fprintf(n.w, "strom: connected again after %s; consuming\n", time.Since(n.since).Round(100*time.Millisecond))
	}
}

// failed notes an error that kgo retries on its own, with backoff.
func (n *waitNote) failed(broker string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return
	}
	n.down, n.since = true, time.Now()
	p := describe(err, n.conn.with(errContext{}))
	msg := p.msg
	if broker != "" {
		msg = cannotReach(broker, lastPart(err))
		if pe := describe(err, errContext{brokers: broker}); !pe.detail {
			msg = pe.msg
		}
	}
	fmt.Fprintf(n.w, "strom: waiting for the cluster (%s); retrying until it is back or interrupted\n", msg)
}

// transient reports whether a consumer error is one that kgo retries by
// itself (with backoff): the brokers are unreachable or restarting, or a
// group is being re-formed, so that the consumer should wait, not exit.
func transient(err error) bool {
	var (
		netErr net.Error
		eofErr *kgo.ErrFirstReadEOF
		kErr   *kerr.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &eofErr), errors.As(err, &netErr):
		return true
	case errors.As(err, &kErr):
		// What a restarting broker or a re-forming group answers; not
		// every retriable code: a deleted topic (UNKNOWN_TOPIC_OR_PARTITION,
		// retriable in Kafka's table) still ends the consumer.
		return slices.Contains(restartCodes, kErr)
	}
	return false
}

var restartCodes = []*kerr.Error{
	kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress, kerr.NotCoordinator,
	kerr.RebalanceInProgress, kerr.UnknownMemberID, kerr.IllegalGeneration,
	kerr.NotLeaderForPartition, kerr.LeaderNotAvailable, kerr.RequestTimedOut,
	kerr.NetworkException, kerr.KafkaStorageError, kerr.BrokerNotAvailable,
}
