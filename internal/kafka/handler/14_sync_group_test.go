package handler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupLedger records, for every record of a test topic, who processed it
// and whether that member's commit of it succeeded.
type groupLedger struct {
	mu        sync.Mutex
	processed map[string][]string // "p/offset" -> members, in order
	committed map[string][]string // "p/offset" -> members whose commit of it succeeded
	failed    map[string][]error  // member -> commit errors
	changed   chan struct{}
}

func newLedger() *groupLedger {
	return &groupLedger{processed: map[string][]string{}, committed: map[string][]string{}, failed: map[string][]error{}, changed: make(chan struct{}, 1)}
}

func recKey(r *kgo.Record) string { return fmt.Sprintf("%d/%d", r.Partition, r.Offset) }

func (l *groupLedger) note(member string, recs []*kgo.Record, commitErr error) {
	l.mu.Lock()
	for _, r := range recs {
		l.processed[recKey(r)] = append(l.processed[recKey(r)], member)
		if commitErr == nil {
			l.committed[recKey(r)] = append(l.committed[recKey(r)], member)
		}
	}
	if commitErr != nil {
		l.failed[member] = append(l.failed[member], commitErr)
	}
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *groupLedger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.processed)
}

// waitFor waits until n distinct records were processed.
func (l *groupLedger) waitFor(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.After(45 * time.Second)
	for l.distinct() < n {
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("%s: %d of %d records processed", what, l.distinct(), n)
		}
	}
}

// cuttableDialer lets a test kill a client the hard way: every connection
// is closed and no new one can be made, so the client goes silent like a
// crashed process (no LeaveGroup, no commit).
type cuttableDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cuttableDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("cut")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cuttableDialer) kill() {
	d.mu.Lock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
}

// groupMember is one consumer of the rebalance tests: poll, process (note
// in the ledger), commit synchronously, then allow a rebalance. With
// BlockRebalanceOnPoll, a live member never loses a partition between
// processing and committing, so nothing it processed is processed again.
type groupMember struct {
	name     string
	cl       *kgo.Client
	dialer   *cuttableDialer
	cancel   context.CancelFunc // the client's context
	stopLoop context.CancelFunc // the poll loop's
	done     chan struct{}
	killed   bool
}

func startMember(t *testing.T, b *testBroker, name, group, topic string, l *groupLedger, balancer kgo.GroupBalancer, extra ...kgo.Opt) *groupMember {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	loopCtx, stopLoop := context.WithCancel(ctx)
	m := &groupMember{name: name, dialer: &cuttableDialer{}, cancel: cancel, stopLoop: stopLoop, done: make(chan struct{})}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr), kgo.WithContext(ctx), kgo.Dialer(m.dialer.dial), kgo.ClientID(name),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(2 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond), kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(100 * time.Millisecond), kgo.RetryTimeout(5 * time.Second),
	}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for loopCtx.Err() == nil {
			fs := cl.PollRecords(loopCtx, 50)
			if recs := fs.Records(); len(recs) > 0 {
				err := cl.CommitRecords(ctx, recs...)
				l.note(name, recs, err)
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

// stop closes the member gracefully: it leaves the group.
func (m *groupMember) stop() {
	m.stopLoop()
	<-m.done
	m.cl.Close()
	m.cancel()
}

// kill silences the member without leaving; the broker must notice by its
// session timeout.
func (m *groupMember) kill() {
	m.killed = true
	m.dialer.kill()
}

// TestGroupRebalanceExactlyOnce runs 3 members over 12 partitions while
// records are produced, kills one (its session must expire), adds two,
// stops one gracefully, and checks that every record was processed, that
// no record was committed twice (no offset moved backwards, none was lost),
// and that only a killed member's uncommitted records were processed
// again. The classic protocol eager (range) and cooperative
// (cooperative-sticky), and the KIP-848 protocol with both server
// assignors.
func TestGroupRebalanceExactlyOnce(t *testing.T) {
	for _, bal := range []struct {
		name  string
		b     kgo.GroupBalancer
		extra []kgo.Opt
	}{
		{"range", kgo.RangeBalancer(), nil},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), nil},
		// KIP-848: the coordinator assigns.
		{"kip848-uniform", kgo.StickyBalancer(), []kgo.Opt{kgo.ServerSideBalancer()}},
		{"kip848-range", kgo.RangeBalancer(), []kgo.Opt{kgo.ServerSideBalancer()}},
	} {
		t.Run(bal.name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, "", map[string]string{
				"group.min.session.timeout.ms":         "1000",
				"group.consumer.session.timeout.ms":    "2000",
				"group.consumer.heartbeat.interval.ms": "200",
			})
			topic, group := "rebalance-"+bal.name, "g-"+bal.name
			admCreate(t, b.admin(t), topic, 12, nil)
			l := newLedger()
			// A producer runs throughout, while members come and go.
			var produced atomic.Int64
			stopProducing := make(chan struct{})
			producing := make(chan struct{})
			pcl := b.client(t, kgo.DefaultProduceTopic(topic))
			go func() {
				defer close(producing)
				for n := 0; ; n++ {
					select {
					case <-stopProducing:
						return
					default:
					}
					recs := make([]*kgo.Record, 20)
					for i := range recs {
						recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d-%d", n, i), Value: []byte("v")}
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := pcl.ProduceSync(ctx, recs...).FirstErr()
					cancel()
					if err != nil {
						t.Errorf("produce: %v", err)
						return
					}
					produced.Add(int64(len(recs)))
				}
			}()
			progress := func(what string) {
				l.waitFor(t, l.distinct()+300, what)
			}
			members := map[string]*groupMember{}
			add := func(name string) { members[name] = startMember(t, b, name, group, topic, l, bal.b, bal.extra...) }
			defer func() {
				for _, m := range members {
					if m.killed {
						m.cancel()
						<-m.done
					} else {
						m.stop()
					}
				}
			}()

			add("m1")
			add("m2")
			add("m3")
			progress("3 members")
			members["m1"].kill()
			progress("after killing m1")
			add("m4")
			add("m5")
			progress("after adding m4 and m5")
			members["m2"].stop()
			delete(members, "m2")
			progress("after m2 left")
			close(stopProducing)
			<-producing
			l.waitFor(t, int(produced.Load()), "all records")

			killed := map[string]bool{"m1": true}
			l.mu.Lock()
			for k, who := range l.processed {
				if c := l.committed[k]; len(c) > 1 {
					t.Errorf("record %s committed by %v: processed twice after a commit", k, c)
				}
				for i, m := range who {
					if i < len(who)-1 && !killed[m] {
						t.Errorf("record %s processed by %v: live member %s's processing was repeated", k, who, m)
					}
				}
			}
			for m, errs := range l.failed {
				if !killed[m] {
					t.Errorf("member %s: commits failed: %v", m, errs)
				}
			}
			l.mu.Unlock()

			// Every partition's committed offset is its end.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			adm := b.admin(t)
			offs, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			ends.Each(func(e kadm.ListedOffset) {
				if o, ok := offs.Lookup(topic, e.Partition); !ok || o.At != e.Offset {
					t.Errorf("partition %d: committed %v, end %d", e.Partition, o.At, e.Offset)
				}
			})
		})
	}
}
