package compat

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// maxCapturedFrame is the largest request frame the proxy keeps; larger
// ones are forwarded and counted, not kept (the corpus stays small, and
// the fuzzer learns nothing from a big record batch that a small one does
// not teach it).
const maxCapturedFrame = 64 << 10

// recordingProxy is a TCP proxy in front of a broker that keeps the request
// frames clients send through it. Each accepted connection is dialled
// through to the broker and copied both ways; the client-to-broker side is
// cut into frames by their 4-byte size prefix, and every frame is kept,
// without its prefix, under the label that was being recorded when the
// connection was accepted. Connections accepted while nothing is recorded
// are forwarded and not kept.
//
// The proxy owns its goroutines: one accept loop, and two per connection.
// close stops them all: it closes the listener and every connection, and
// waits.
type recordingProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		label   string
		closed  bool
		conns   map[net.Conn]struct{}
		frames  []capturedFrame
		skipped map[string]int // frames over maxCapturedFrame, by label
	}
}

// capturedFrame is one request frame a client sent, without its size prefix.
type capturedFrame struct {
	client string
	frame  []byte
}

// key and version are the frame's API key and version; ok is false for a
// frame too short to have them.
func (f capturedFrame) keyVersion() (key, version int16, ok bool) {
	if len(f.frame) < 4 {
		return 0, 0, false
	}
	return int16(binary.BigEndian.Uint16(f.frame)), int16(binary.BigEndian.Uint16(f.frame[2:])), true
}

// listenProxy opens the proxy's listener on a free loopback port, so that
// its address can be advertised before the broker it forwards to exists.
// The proxy is closed when the test ends.
func listenProxy(t *testing.T) *recordingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listener: %v", err)
	}
	p := &recordingProxy{ln: ln}
	p.mu.conns = map[net.Conn]struct{}{}
	p.mu.skipped = map[string]int{}
	t.Cleanup(p.close)
	return p
}

// addr is the address clients connect to.
func (p *recordingProxy) addr() string { return p.ln.Addr().String() }

// serve starts forwarding connections to target.
func (p *recordingProxy) serve(target string) {
	p.target = target
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.acceptLoop()
	}()
}

// record labels the connections accepted from now on with client, until
// the returned function is called. Clients are recorded one at a time.
func (p *recordingProxy) record(client string) (stop func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.label = client
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.mu.label = ""
	}
}

// captured closes the proxy, so that every connection has been read to its
// end, and returns the frames kept and the count of frames skipped as too
// large, by client.
func (p *recordingProxy) captured() ([]capturedFrame, map[string]int) {
	p.close()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.frames, p.mu.skipped
}

func (p *recordingProxy) close() {
	p.mu.Lock()
	if !p.mu.closed {
		p.mu.closed = true
		p.ln.Close()
		for c := range p.mu.conns {
			c.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *recordingProxy) acceptLoop() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			// Closed by close; a loopback listener has no other
			// errors worth retrying in a test.
			return
		}
		p.mu.Lock()
		label, closed := p.mu.label, p.mu.closed
		if !closed {
			p.mu.conns[client] = struct{}{}
			p.wg.Add(1)
		}
		p.mu.Unlock()
		if closed {
			client.Close()
			return
		}
		go func() {
			defer p.wg.Done()
			p.forward(client, label)
		}()
	}
}

// forward connects client to the target and copies both ways until either
// side ends, then closes both.
func (p *recordingProxy) forward(client net.Conn, label string) {
	defer p.forget(client)
	broker, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		broker.Close()
		return
	}
	p.mu.conns[broker] = struct{}{}
	p.mu.Unlock()
	defer p.forget(broker)

	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(client, broker)
		// The broker hung up: so does the client's side.
		client.Close()
	}()
	p.requests(label, client, broker)
	// The client hung up (or the proxy closed): end the other direction.
	broker.Close()
	<-done
}

// requests copies request frames from client to broker, keeping those of a
// recorded connection.
func (p *recordingProxy) requests(label string, client io.Reader, broker io.Writer) {
	r := bufio.NewReader(client)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(size[:]))
		if _, err := broker.Write(size[:]); err != nil {
			return
		}
		if label == "" || n > maxCapturedFrame {
			if label != "" {
				p.mu.Lock()
				p.mu.skipped[label]++
				p.mu.Unlock()
			}
			if _, err := io.CopyN(broker, r, n); err != nil {
				return
			}
			continue
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return // a cut frame is neither kept nor forwarded
		}
		// Kept before it is forwarded: a request that was answered has
		// been recorded.
		p.mu.Lock()
		p.mu.frames = append(p.mu.frames, capturedFrame{client: label, frame: frame})
		p.mu.Unlock()
		if _, err := broker.Write(frame); err != nil {
			return
		}
	}
}

func (p *recordingProxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.mu.conns, c)
	p.mu.Unlock()
}
