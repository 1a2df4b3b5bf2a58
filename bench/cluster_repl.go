package bench

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What the replication scenarios (cluster-leader-failover,
// cluster-follower-catchup) share: an RF=3 topic on the three nodes of
// startCluster3, the cluster's view of its partitions (leader, ISR) polled
// through Metadata, and a paced acks=all producer whose records carry
// their producer, sequence number and scheduled send time.

const (
	// replPoll is how often the cluster's partition state is polled.
	replPoll = 100 * time.Millisecond
	// pacedHeader is what a paced record's value starts with: its
	// producer's tag (1 byte), its sequence number and its scheduled send
	// time since the producer's base (8 bytes each).
	pacedHeader = 17
	// drainQuiet ends a read-back: that long without a record from a
	// topic nothing writes to any more.
	drainQuiet = 3 * time.Second
)

// addrs is every node's current Kafka listener (a restarted node has a
// new one).
func addrs(nodes []*clusterNode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.srv.Addr)
	}
	return out
}

// createReplicated creates topic with partitions partitions of replication
// factor 3 through any of the nodes.
func createReplicated(ctx context.Context, nodes []*clusterNode, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs(nodes)...), kgo.ClientID("strombench-admin"))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 3, nil, topic)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				err = r.Err
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create %s (%d partitions, RF 3): %w", topic, partitions, err)
	}
	return nil
}

// partState is a partition as a node's Metadata lists it.
type partState struct {
	Leader   int32
	Replicas []int32
	ISR      []int32
}

// partitionStates asks a node (any: kgo picks one) for topic's partitions.
func partitionStates(ctx context.Context, cl *kgo.Client, topic string) ([]partState, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := cl.Request(rctx, req)
	if err != nil {
		return nil, err
	}
	m := resp.(*kmsg.MetadataResponse)
	if len(m.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %s: %d topics", topic, len(m.Topics))
	}
	if err := kerr.ErrorForCode(m.Topics[0].ErrorCode); err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	out := make([]partState, len(m.Topics[0].Partitions))
	for _, p := range m.Topics[0].Partitions {
		if int(p.Partition) >= len(out) || p.Partition < 0 {
			return nil, fmt.Errorf("metadata of %s: partition %d of %d", topic, p.Partition, len(out))
		}
		out[p.Partition] = partState{Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR}
		if p.ErrorCode != 0 {
			out[p.Partition].Leader = -1
		}
	}
	return out, nil
}

// waitPartitions polls topic's partitions every replPoll until ok holds
// for all of them (and there are want), for at most wait.
func waitPartitions(ctx context.Context, cl *kgo.Client, topic string, want int, wait time.Duration, ok func(partState) bool) ([]partState, error) {
	deadline := time.Now().Add(wait)
	var last string
	for {
		ps, err := partitionStates(ctx, cl, topic)
		if err == nil && len(ps) == want && !slices.ContainsFunc(ps, func(p partState) bool { return !ok(p) }) {
			return ps, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%+v", ps)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: not every partition as wanted within %v: %s", topic, wait, last)
		}
		time.Sleep(replPoll) // polling the cluster's state
	}
}

// fullISR is a led partition with every replica in its ISR.
func fullISR(p partState) bool {
	return p.Leader >= 0 && len(p.ISR) == len(p.Replicas) && len(p.Replicas) > 0
}

// settled is fullISR led by its preferred (first) replica: where the
// cluster goes back to after a failover.
func settled(p partState) bool { return fullISR(p) && p.Leader == p.Replicas[0] }

// inISR is a led partition whose ISR lists node.
func inISR(node int32) func(partState) bool {
	return func(p partState) bool { return p.Leader >= 0 && slices.Contains(p.ISR, node) }
}

// pacedProducer sends Rate records/s of Bytes-byte values round robin to
// the topic's Partitions, every latencyTick the records due, each stamped
// with its scheduled send time (a client falling behind shows as latency).
// OnAck sees every outcome, from the client's goroutines.
type pacedProducer struct {
	Tag        byte
	Rate       int
	Bytes      int
	Partitions int32
	Base       time.Time // the schedule's and the stamps' origin
	OnAck      func(r pacedRecord, err error)
}

// pacedRecord is one record's stamp and outcome.
type pacedRecord struct {
	Tag       byte
	Seq       int64
	Partition int32
	Sent      time.Duration // scheduled, since Base
	Acked     time.Duration // since Base
}

// decodePaced reads a paced record's stamp from its value.
func decodePaced(v []byte) (tag byte, seq int64, sent time.Duration, ok bool) {
	if len(v) < pacedHeader {
		return 0, 0, 0, false
	}
	return v[0], int64(binary.BigEndian.Uint64(v[1:])), time.Duration(binary.BigEndian.Uint64(v[9:])), true
}

// run sends until ctx ends, then waits at most flush for what is
// unacknowledged; it returns the records sent.
func (p *pacedProducer) run(ctx context.Context, cl *kgo.Client, flush time.Duration) int64 {
	pool := values(RandomPayload, p.Bytes)
	promise := func(r *kgo.Record, err error) {
		acked := time.Since(p.Base)
		_, seq, sent, _ := decodePaced(r.Value)
		p.OnAck(pacedRecord{Tag: p.Tag, Seq: seq, Partition: r.Partition, Sent: sent, Acked: acked}, err)
	}
	tick := time.NewTicker(latencyTick)
	defer tick.Stop()
	var seq int64
	start := time.Since(p.Base)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		due := int64(time.Since(p.Base)-start) * int64(p.Rate) / int64(time.Second)
		for ; seq < due; seq++ {
			v := make([]byte, p.Bytes)
			copy(v, pool[seq%int64(len(pool))])
			v[0] = p.Tag
			binary.BigEndian.PutUint64(v[1:], uint64(seq))
			binary.BigEndian.PutUint64(v[9:], uint64(start+time.Duration(seq)*time.Second/time.Duration(p.Rate)))
			cl.Produce(context.WithoutCancel(ctx), &kgo.Record{Value: v, Partition: int32(seq % int64(p.Partitions))}, promise)
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flush)
	defer cancel()
	_ = cl.Flush(fctx) // what is still unacknowledged is counted as not acknowledged
	return seq
}

// pacedClientOpts are a paced producer's kgo options: acks=all,
// idempotent (kgo's defaults), no linger, records to the partition they
// name.
func pacedClientOpts(seeds []string, topic string, extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("strombench"),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, extra...)
}

// ackedSet is what a run's producers had acknowledged, per producer tag:
// every acknowledged sequence number must be read back.
type ackedSet struct {
	mu    sync.Mutex
	acked map[byte]map[int64]bool
	fails map[byte]int
	first map[byte]error
}

func newAckedSet() *ackedSet {
	return &ackedSet{acked: map[byte]map[int64]bool{}, fails: map[byte]int{}, first: map[byte]error{}}
}

func (s *ackedSet) add(r pacedRecord, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.fails[r.Tag]++
		if s.first[r.Tag] == nil {
			s.first[r.Tag] = err
		}
		return
	}
	if s.acked[r.Tag] == nil {
		s.acked[r.Tag] = map[int64]bool{}
	}
	s.acked[r.Tag][r.Seq] = true
}

// verify reads every partition of topic from its start to its end offset
// through seeds and returns how many acknowledged records were not there
// (lost) and how many distinct records were read.
func (s *ackedSet) verify(ctx context.Context, seeds []string, topic string) (lost, read int64, err error) {
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("strombench-admin"))
	if err != nil {
		return 0, 0, err
	}
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	admCl.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
		offsets[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("strombench"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	seen := map[byte]map[int64]bool{}
	last := time.Now()
	for len(want) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = errors.Join(ferr, fmt.Errorf("fetch %s[%d]: %w", t, p, err))
			}
		})
		if ferr != nil {
			return 0, 0, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			last = time.Now()
			if tag, seq, _, ok := decodePaced(r.Value); ok {
				if seen[tag] == nil {
					seen[tag] = map[int64]bool{}
				}
				seen[tag][seq] = true
			}
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
		// A partition's end may be a control batch (a leader's marker)
		// that kgo does not return: once nothing came for drainQuiet,
		// with no producer left, everything readable was read.
		if time.Since(last) > drainQuiet {
			break
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for tag, acked := range s.acked {
		for seq := range acked {
			if !seen[tag][seq] {
				lost++
			}
		}
	}
	for _, m := range seen {
		read += int64(len(m))
	}
	return lost, read, nil
}

// total is the records acknowledged and failed, over every producer.
func (s *ackedSet) total() (acked, failed int64, first error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.acked {
		acked += int64(len(m))
	}
	for tag, n := range s.fails {
		failed += int64(n)
		first = cmp.Or(first, s.first[tag])
	}
	return acked, failed, first
}

// restartNode starts a killed node again on its data and waits until the
// cluster lists three brokers.
func restartNode(ctx context.Context, e *Env, n *clusterNode) error {
	srv, err := e.startOn(ctx, n.srv.kind, n.srv.prog, n.srv.DataDir)
	if err != nil {
		return fmt.Errorf("restart node %d: %w", n.id, err)
	}
	n.srv = srv
	_, err = waitClusterBrokers(ctx, srv.Addr, 3)
	return err
}

// killNode SIGKILLs a node; restartNode starts it again.
func killNode(e *Env, n *clusterNode) {
	e.running = slices.DeleteFunc(e.running, func(r *Server) bool { return r == n.srv })
	n.srv.kill()
}
