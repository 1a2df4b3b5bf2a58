package crash

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
)

// lossyProxy forwards TCP connections to a broker and breaks them the ways
// a network does, each on the test's command:
//
//   - cut resets a connection: responses on their way are lost, the client
//     sees the error at once and retries on a new connection;
//   - drop turns a connection into a black hole for responses from the next
//     whole response on: the client waits for its request timeout, then
//     retries on a new connection;
//   - with maxDelay set, a third of the connections hold every request chunk
//     and another third every response for 1 ms to maxDelay before passing
//     it on (in order);
//   - freeze passes no response any more from the moment it returns and
//     resets every connection, until thaw points the proxy at a new broker:
//     a power cut as the clients see it.
//
// Responses are forwarded whole (Kafka's size-prefixed frames), so a dropped
// or frozen response is never half delivered.
type lossyProxy struct {
	ln       net.Listener
	maxDelay time.Duration
	closed   chan struct{} // closed by close: held chunks are let go
	wg       sync.WaitGroup

	// fwd is read-held while a response is written to a client; freeze
	// write-locks it, so that once frozen is set no response is on its way.
	// frozen and gen change with mu held too.
	fwd    sync.RWMutex
	frozen atomic.Bool
	gen    atomic.Int64 // connections of an older generation forward nothing

	delays, dropped atomic.Int64 // chunks held, responses swallowed

	mu     sync.Mutex
	target string
	rng    *rand.Rand
	conns  map[*proxyConn]struct{}
	resets int
	drops  int
	shut   bool          // close has begun: no new connection
	wake   chan struct{} // closed by thaw: connections waiting while frozen go on
}

// proxyConn is one forwarded connection.
type proxyConn struct {
	client, broker net.Conn
	gen            int64
	delayRequests  bool
	delayResponses bool
	blackhole      atomic.Bool // responses are swallowed
}

// newLossyProxy listens on a loopback port; start begins forwarding.
func newLossyProxy(t *testing.T, maxDelay time.Duration) *lossyProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &lossyProxy{ln: ln, maxDelay: maxDelay, closed: make(chan struct{}),
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3)), conns: map[*proxyConn]struct{}{}}
}

func (p *lossyProxy) addr() string { return p.ln.Addr().String() }

// start forwards connections to target until close.
func (p *lossyProxy) start(target string) {
	p.target = target
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.serve()
	}()
}

func (p *lossyProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.connect(c)
	}
}

// connect links a client connection to the broker. While the proxy is
// frozen it waits, as a client's SYNs to a host without power go
// unanswered until the host is back: closing it instead would look to
// franz-go like a broker that wants TLS, an error it does not retry.
func (p *lossyProxy) connect(c net.Conn) {
	for {
		p.mu.Lock()
		shut, frozen, wake, target, gen := p.shut, p.frozen.Load(), p.wake, p.target, p.gen.Load()
		p.mu.Unlock()
		if shut {
			c.Close()
			return
		}
		if frozen {
			select {
			case <-wake:
			case <-p.closed:
				c.Close()
				return
			}
			continue
		}
		b, err := net.Dial("tcp", target)
		p.mu.Lock()
		if p.shut || p.frozen.Load() || p.gen.Load() != gen {
			// Frozen while dialing: b may lead to the broker that lost
			// power. Wait for the next one.
			p.mu.Unlock()
			if err == nil {
				b.Close()
			}
			continue
		}
		if err != nil {
			p.mu.Unlock()
			c.Close()
			return
		}
		pc := &proxyConn{client: c, broker: b, gen: gen}
		if p.maxDelay > 0 {
			switch p.rng.IntN(3) {
			case 0:
				pc.delayRequests = true
			case 1:
				pc.delayResponses = true
			}
		}
		p.conns[pc] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		done := func() {
			defer p.wg.Done()
			c.Close()
			b.Close()
			p.mu.Lock()
			delete(p.conns, pc)
			p.mu.Unlock()
		}
		go func() { defer done(); p.requests(pc) }()
		go func() { defer done(); p.responses(pc) }()
		return
	}
}

// hold keeps a chunk for 1 ms to maxDelay: network latency, not a wait for
// state. It returns false when the proxy is closing.
func (p *lossyProxy) hold() bool {
	p.mu.Lock()
	d := time.Millisecond + time.Duration(p.rng.Int64N(int64(p.maxDelay)))
	p.mu.Unlock()
	p.delays.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.closed:
		return false
	}
}

// requests copies the client's bytes to the broker.
func (p *lossyProxy) requests(pc *proxyConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := pc.client.Read(buf)
		if n > 0 {
			if pc.delayRequests && !p.hold() {
				return
			}
			if _, werr := pc.broker.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// maxFrame bounds a response the proxy buffers whole.
const maxFrame = 256 << 20

// responses copies the broker's responses to the client, one whole frame
// at a time, unless the connection is a black hole or the proxy frozen.
func (p *lossyProxy) responses(pc *proxyConn) {
	var size [4]byte
	var frame []byte
	for {
		if _, err := io.ReadFull(pc.broker, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > maxFrame {
			return
		}
		frame = append(frame[:0], size[:]...)
		frame = append(frame, make([]byte, n)...)
		if _, err := io.ReadFull(pc.broker, frame[4:]); err != nil {
			return
		}
		if pc.blackhole.Load() {
			p.dropped.Add(1)
			continue
		}
		if pc.delayResponses && !p.hold() {
			return
		}
		p.fwd.RLock()
		if p.frozen.Load() || p.gen.Load() != pc.gen {
			p.fwd.RUnlock()
			return
		}
		_, err := pc.client.Write(frame)
		p.fwd.RUnlock()
		if err != nil {
			return
		}
	}
}

// pick returns a random connection, or nil. p.mu must be held.
func (p *lossyProxy) pickLocked() *proxyConn {
	if len(p.conns) == 0 {
		return nil
	}
	i := p.rng.IntN(len(p.conns))
	for pc := range p.conns {
		if i == 0 {
			return pc
		}
		i--
	}
	return nil
}

// reset closes pc with a TCP reset (not a clean close).
func reset(pc *proxyConn) {
	if tc, ok := pc.client.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	pc.client.Close()
	pc.broker.Close()
}

// cut resets one random connection.
func (p *lossyProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc := p.pickLocked(); pc != nil {
		reset(pc)
		p.resets++
	}
}

// drop makes one random connection swallow every response from now on; the
// client times out and closes it.
func (p *lossyProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc := p.pickLocked(); pc != nil && !pc.blackhole.Swap(true) {
		p.drops++
	}
}

// freeze stops every response: when it returns, no response will reach a
// client until thaw, every connection is reset, and new ones wait.
func (p *lossyProxy) freeze() {
	p.fwd.Lock()
	p.mu.Lock()
	if !p.frozen.Swap(true) {
		p.wake = make(chan struct{})
	}
	p.gen.Add(1)
	p.mu.Unlock()
	p.fwd.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		reset(pc)
	}
}

// thaw forwards connections, the waiting ones too, to target.
func (p *lossyProxy) thaw(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
	if p.frozen.Swap(false) {
		close(p.wake)
	}
}

// counts returns the resets, drops, held chunks and swallowed responses.
func (p *lossyProxy) counts() (resets, drops int, delays, dropped int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resets, p.drops, p.delays.Load(), p.dropped.Load()
}

func (p *lossyProxy) close() {
	p.ln.Close()
	close(p.closed)
	p.mu.Lock()
	p.shut = true
	for pc := range p.conns {
		pc.client.Close()
		pc.broker.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// startBehindProxy starts an in-process broker on a fresh data directory
// that tells clients to connect through proxy, and starts the proxy.
func startBehindProxy(t *testing.T, proxy *lossyProxy) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "-",
		AdvertisedAddr: proxy.addr(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	proxy.start(b.KafkaAddr().String())
	return b
}

func shutdown(t *testing.T, b *broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

// Responses lost on the way back (connections reset after the broker wrote)
// make idempotent producers retry; no record may be stored twice and every
// acknowledged one must be where its acknowledgement said.
func TestLostResponsesNoDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	proxy := newLossyProxy(t, 0)
	b := startBehindProxy(t, proxy)
	defer shutdown(t, b)
	defer proxy.close()

	const producers, partitions, topic = 8, 4, "lossy"
	createTopic(t, b.KafkaAddr().String(), topic, partitions)
	ps := startProducers(t, produceConfig{addr: proxy.addr(), topic: topic, prefix: "q", n: producers, pace: 32,
		opts: idempotence(t)})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond) // the moment of the next cut
		proxy.cut()
	}
	ps.stop()

	r := ps.verify(t, b.KafkaAddr().String())
	resets, _, _, _ := proxy.counts()
	if resets == 0 {
		t.Fatal("the proxy never cut a connection")
	}
	t.Logf("%d connections reset; %v", resets, r)
}

// Responses that are late, or never come: the proxy delays a third of the
// connections' requests and a third of their responses by 1-50 ms, and
// every 50-250 ms swallows every response of a random connection without
// closing it, so the client waits out its request timeout and retries on a
// new connection. Eight idempotent acks=all producers: no record stored
// twice, every acknowledged one where its acknowledgement said.
//
// STROM_CRASH_IDEMPOTENCE=off turns idempotence off: the test must then
// fail with records stored twice (a check that it can fail).
func TestDelayedAndDroppedResponsesNoDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	proxy := newLossyProxy(t, 50*time.Millisecond)
	b := startBehindProxy(t, proxy)
	defer shutdown(t, b)
	defer proxy.close()

	const producers, partitions, topic = 8, 4, "dropped"
	createTopic(t, b.KafkaAddr().String(), topic, partitions)
	// A dropped response costs the client its request timeout: produce
	// requests wait 1 s plus 500 ms of overhead, the others 500 ms.
	opts := append(idempotence(t), kgo.ProduceRequestTimeout(time.Second), kgo.RequestTimeoutOverhead(500*time.Millisecond))
	ps := startProducers(t, produceConfig{addr: proxy.addr(), topic: topic, prefix: "d", n: producers, pace: 32, opts: opts})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond) // the moment of the next drop
		proxy.drop()
	}
	ps.stop()

	r := ps.verify(t, b.KafkaAddr().String())
	_, drops, delays, dropped := proxy.counts()
	if drops == 0 || dropped == 0 || delays == 0 {
		t.Fatalf("the proxy dropped %d connections (%d responses) and delayed %d chunks: not the test it claims", drops, dropped, delays)
	}
	t.Logf("%d connections dropped (%d responses swallowed), %d chunks delayed; %v", drops, dropped, delays, r)
}

// idempotence returns the producer options STROM_CRASH_IDEMPOTENCE asks
// for: none by default (franz-go is idempotent), or idempotence off.
func idempotence(t *testing.T) []kgo.Opt {
	switch v := os.Getenv("STROM_CRASH_IDEMPOTENCE"); v {
	case "", "on":
		return nil
	case "off":
		t.Log("idempotence off: this test is expected to fail")
		return []kgo.Opt{kgo.DisableIdempotentWrite()}
	default:
		t.Fatalf("STROM_CRASH_IDEMPOTENCE=%q: want on or off", v)
		return nil
	}
}
