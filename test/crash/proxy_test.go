package crash

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
)

// lossyProxy forwards TCP connections to a broker and, while cutting is on,
// resets a random connection every few milliseconds: requests the broker
// already handled lose their responses, and the clients retry them.
type lossyProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns map[net.Conn]net.Conn // client side -> broker side
	cuts  int
	wg    sync.WaitGroup
}

func newLossyProxy(t *testing.T) *lossyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &lossyProxy{ln: ln, conns: map[net.Conn]net.Conn{}}
}

func (p *lossyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = b
		p.mu.Unlock()
		p.wg.Add(2)
		done := func() {
			defer p.wg.Done()
			c.Close()
			b.Close()
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}
		go func() { defer done(); io.Copy(b, c) }()
		go func() { defer done(); io.Copy(c, b) }()
	}
}

// cut resets one random connection.
func (p *lossyProxy) cut(rng *rand.Rand) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.conns) == 0 {
		return
	}
	i := rng.IntN(len(p.conns))
	for c, b := range p.conns {
		if i == 0 {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, not a clean close
			}
			c.Close()
			b.Close()
			p.cuts++
			return
		}
		i--
	}
}

func (p *lossyProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c, b := range p.conns {
		c.Close()
		b.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Responses lost on the way back (connections reset after the broker wrote)
// make idempotent producers retry; no record may be stored twice and every
// acknowledged one must be where its acknowledgement said.
func TestLostResponsesNoDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	proxy := newLossyProxy(t)
	b, err := broker.Start(broker.Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "-",
		AdvertisedAddr: proxy.ln.Addr().String(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	proxy.target = b.KafkaAddr().String()
	go proxy.serve()
	defer proxy.close()

	ctx := context.Background()
	const producers, partitions, topic = 8, 4, "lossy"
	createTopic(t, b.KafkaAddr().String(), topic, partitions)

	var mu sync.Mutex
	acked := map[string]loc{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.ln.Addr().String()), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
					if err := cl.Flush(fctx); err != nil {
						t.Errorf("flush: %v", err)
					}
					cancel()
					return
				default:
				}
				v := fmt.Sprintf("q%02d-%07d", p, seq)
				cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce %s: %v", r.Value, err)
						return
					}
					mu.Lock()
					acked[string(r.Value)] = loc{r.Partition, r.Offset}
					mu.Unlock()
				})
				if seq%32 == 31 {
					time.Sleep(time.Millisecond) // pace the producers
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond) // the moment of the next cut
		proxy.cut(rng)
	}
	close(stop)
	wg.Wait()

	stored := readBack(t, b.KafkaAddr().String(), topic)
	mu.Lock()
	defer mu.Unlock()
	if lost, moved := checkAcked(t, acked, stored); lost+moved > 0 {
		t.Fatalf("%d acknowledged records lost, %d moved", lost, moved)
	}
	proxy.mu.Lock()
	cuts := proxy.cuts
	proxy.mu.Unlock()
	if cuts == 0 {
		t.Fatal("the proxy never cut a connection")
	}
	t.Logf("%d connections reset; %d records acknowledged, %d stored, no duplicates", cuts, len(acked), len(stored))
}
