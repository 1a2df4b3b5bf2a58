package compat

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/broker"
)

// The broker under test is Strom itself (internal/broker), started in
// process on a fresh data directory and a free loopback port. Only this file
// knows which broker runs.

// brokerHasGroups says whether the broker under test implements consumer
// groups (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetCommit,
// OffsetFetch). Strom's group coordinator (internal/coordinator/group) does.
const brokerHasGroups = true

// externalBrokerEnv names an environment variable that, when set to a
// host:port, makes startBroker use that already running broker (a real Kafka,
// or a Strom started by hand) instead of starting one.
const externalBrokerEnv = "COMPAT_BROKER"

// brokerLogsEnv names an environment variable that, when set, turns on
// withBrokerLogs for every broker the tests start.
const brokerLogsEnv = "COMPAT_BROKER_LOGS"

// brokerOption configures startBroker.
type brokerOption func(*brokerConfig)

type brokerConfig struct {
	logs       bool
	advertised string
}

// withBrokerLogs sends the broker's warnings and errors to t.Log, for
// debugging a failing client.
func withBrokerLogs() brokerOption {
	return func(c *brokerConfig) { c.logs = true }
}

// withAdvertisedAddr makes the broker advertise addr in Metadata and
// FindCoordinator instead of its own listener, so that clients bootstrapped
// through a proxy at addr keep using it (capture_test.go records them).
func withAdvertisedAddr(addr string) brokerOption {
	return func(c *brokerConfig) { c.advertised = addr }
}

// startBroker starts a single-broker cluster listening on 127.0.0.1 on a
// free port, stops it when the test ends, and returns its address.
func startBroker(t *testing.T, opts ...brokerOption) (addr string) {
	t.Helper()
	addr, _ = startRestartableBroker(t, opts...)
	return addr
}

// startRestartableBroker is startBroker for tests that restart the broker:
// restart stops it cleanly and starts it again on the same data directory
// and address, as an operator restarting it would. Against an external
// broker restart is nil.
func startRestartableBroker(t *testing.T, opts ...brokerOption) (addr string, restart func()) {
	t.Helper()
	if ext := os.Getenv(externalBrokerEnv); ext != "" {
		t.Logf("using the external broker %s from $%s", ext, externalBrokerEnv)
		return ext, nil
	}
	if os.Getenv(brokerLogsEnv) != "" {
		opts = append(opts, withBrokerLogs())
	}
	var cfg brokerConfig
	for _, o := range opts {
		o(&cfg)
	}

	logger := slog.New(slog.DiscardHandler)
	if cfg.logs {
		logger = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	advertised := cfg.advertised
	if advertised == "" {
		// Advertise the address the clients bootstrap from.
		advertised = "127.0.0.1:0"
	}
	dir := t.TempDir()
	start := func(kafkaAddr string) *broker.Broker {
		b, err := broker.Start(broker.Config{
			DataDir:        dir,
			KafkaAddr:      kafkaAddr,
			AdvertisedAddr: advertised,
			HTTPAddr:       "-",
			Logger:         logger,
			// A new group's first rebalance need not wait Kafka's 3 s for
			// more members: the tests start their members together or wait
			// for them.
			// The log cleaner looks for work every 100 ms instead of 15 s,
			// so compacted topics are cleaned while a test waits.
			Props: map[string]string{"group.initial.rebalance.delay.ms": "0", "log.cleaner.backoff.ms": "100"},
		})
		if err != nil {
			t.Fatalf("start broker: %v", err)
		}
		return b
	}
	stop := func(b *broker.Broker) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	}
	b := start("127.0.0.1:0")
	addr = b.KafkaAddr().String()
	t.Cleanup(func() { stop(b) })
	return addr, func() {
		t.Helper()
		stop(b)
		b = start(addr)
	}
}

// skipWithoutGroups skips a test that needs consumer groups while the broker
// under test has none.
func skipWithoutGroups(t *testing.T) {
	t.Helper()
	if !brokerHasGroups && os.Getenv(externalBrokerEnv) == "" {
		t.Skip("needs consumer groups, which the broker under test does not implement yet")
	}
}

// testLogWriter adapts t.Log to an io.Writer, one call per line.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
