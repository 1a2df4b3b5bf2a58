package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// directProposer is a quorum of one in the test's hands: it applies each
// payload to the store at once, except those naming a held topic, which
// wait until released (a commit stuck in an election).
type directProposer struct {
	mu       sync.Mutex // serializes Apply (the state machine's contract)
	store    *metadata.Store
	index    uint64
	log      [][]byte      // every payload applied, in order
	hold     []byte        // payloads containing this wait for release
	waiting  chan struct{} // closed when a held payload first arrived
	waitOnce sync.Once
	release  chan struct{}
}

func (p *directProposer) Propose(ctx context.Context, payload []byte) (any, error) {
	if p.hold != nil && bytes.Contains(payload, p.hold) {
		p.waitOnce.Do(func() { close(p.waiting) })
		select {
		case <-p.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p.apply(payload), nil
}

// apply applies one committed payload, as the quorum's log would.
func (p *directProposer) apply(payload []byte) any {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	p.log = append(p.log, payload)
	return p.store.Apply(p.index, payload)
}

type leaderQuorum struct{ id int32 }

func (q leaderQuorum) Leader() int32          { return q.id }
func (q leaderQuorum) Active() map[int32]bool { return nil }

// A cluster node's CreateTopics whose commit waits (no quorum leader yet,
// an election) holds no lock that another creation, or the reconciler
// opening partitions, needs: another topic is created meanwhile.
func TestReplicatedCreateDoesNotWaitForAStuckCommit(t *testing.T) {
	p := &directProposer{hold: []byte(`"stuck"`), waiting: make(chan struct{}), release: make(chan struct{})}
	p.store = metadata.NewReplicatedStore(p, time.Minute)
	c, err := Open(Config{DataDir: "/data", FS: memfs.New(), Logger: slog.New(slog.DiscardHandler), Quorum: leaderQuorum{},
		OpenMetadata: func(string) (*metadata.Store, error) { return p.store, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Register(metadata.BrokerInfo{ID: c.NodeID(), Host: "localhost", Port: 9092, Incarnation: "a"}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unstick := func() { once.Do(func() { close(p.release) }) }
	defer unstick()
	stuck := make(chan error, 1)
	go func() { _, err := c.CreateTopic("stuck", 1, nil, false); stuck <- err }()
	<-p.waiting
	free := make(chan error, 1)
	go func() { _, err := c.CreateTopic("free", 2, nil, false); free <- err }()
	select {
	case err := <-free:
		if err != nil {
			t.Fatalf("create free: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a creation waited for another's stuck commit")
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, err := c.Partition("free", 1); err != nil; _, err = c.Partition("free", 1) {
		if time.Now().After(deadline) {
			t.Fatalf("free-1 not opened while a commit is stuck: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // polling the reconciler with a deadline
	}
	unstick()
	if err := <-stuck; err != nil {
		t.Fatalf("create stuck: %v", err)
	}
	if _, ok := c.Topic("stuck"); !ok {
		t.Fatal("stuck not created after its commit")
	}
}
