package handler

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// testBroker is a real broker on a loopback port: cluster + handler +
// server, as the broker package wires them.
type testBroker struct {
	Addr    string
	Cluster *cluster.Cluster
	Groups  *group.Coordinator
	Txns    *txn.Coordinator
	dir     string
	srv     *server.Server
	h       *Handler
	done    chan error
}

// startBroker starts a broker on a fresh data dir (or dir, if given) with
// optional broker configs. group.initial.rebalance.delay.ms is 0 unless
// props set it, so that group tests need not wait Kafka's 3 s.
func startBroker(t testing.TB, dir string, props map[string]string) *testBroker {
	t.Helper()
	return startBrokerAt(t, dir, "127.0.0.1:0", props)
}

// startBrokerAt is startBroker listening on addr (a restarted broker comes
// back on the address its clients know).
func startBrokerAt(t testing.TB, dir, addr string, props map[string]string) *testBroker {
	t.Helper()
	return startBrokerFS(t, dir, addr, props, nil)
}

// startBrokerFS is startBrokerAt with the data directory on fsys (nil: the
// operating system's).
func startBrokerFS(t testing.TB, dir, addr string, props map[string]string, fsys vfs.FS) *testBroker {
	t.Helper()
	return startBrokerWith(t, dir, addr, props, fsys, nil)
}

// startBrokerWith is startBrokerFS with setup called on the handler before
// it serves (test hooks such as remoteTxnCoordinator).
func startBrokerWith(t testing.TB, dir, addr string, props map[string]string, fsys vfs.FS, setup func(*Handler)) *testBroker {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	withDelay := map[string]string{"group.initial.rebalance.delay.ms": "0"}
	for k, v := range props {
		withDelay[k] = v
	}
	props = withDelay
	bc, err := metadata.NewBrokerConfig(props)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Open(cluster.Config{DataDir: dir, Broker: bc, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	p, _ := strconv.Atoi(port)
	groups, err := group.Open(group.ConfigFor(c, nil))
	if err != nil {
		t.Fatal(err)
	}
	c.OnTopicDeleted(groups.TopicDeleted)
	txns, err := txn.Open(txn.ConfigFor(c, groups, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := New(c, Config{AdvertisedHost: host, AdvertisedPort: int32(p), Groups: groups, Txns: txns, TransactionVersion: bc.Settings().TransactionVersion})
	if setup != nil {
		setup(h)
	}
	srv := server.New(server.Config{}, h)
	b := &testBroker{Addr: ln.Addr().String(), Cluster: c, Groups: groups, Txns: txns, dir: dir, srv: srv, h: h, done: make(chan error, 1)}
	go func() { b.done <- srv.Serve(ln) }()
	t.Cleanup(func() { b.Stop(t) })
	return b
}

// Stop shuts the broker down cleanly (idempotent).
func (b *testBroker) Stop(t testing.TB) {
	if b.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.h.Stop()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-b.done; !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
	if err := b.Txns.Close(); err != nil {
		t.Errorf("close txns: %v", err)
	}
	if err := b.Groups.Close(); err != nil {
		t.Errorf("close groups: %v", err)
	}
	if err := b.Cluster.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	b.srv = nil
}

// client returns a franz-go client for the broker, closed at cleanup.
func (b *testBroker) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (b *testBroker) admin(t testing.TB) *kadm.Client {
	return kadm.NewClient(b.client(t))
}
