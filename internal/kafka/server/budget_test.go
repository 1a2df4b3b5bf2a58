package server

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// acquireAsync runs acquire on its own goroutine; the channel gets its error.
func acquireAsync(b *budget, c *charge, n int64, stop <-chan struct{}) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := b.acquire(c, n, stop)
		done <- err
	}()
	return done
}

func notYet(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v), want it waiting", what, err)
	default:
	}
}

func granted(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waiting", what)
	}
}

// TestBudget: grants while the limit holds; one frame at a time may go past
// it; the rest wait in order and resume on release; a stopped wait gives up
// and holds nothing.
func TestBudget(t *testing.T) {
	b := newBudget(100)
	never := make(chan struct{})
	var a, o, w1, w2, w3 charge

	if _, err := b.acquire(&a, 60, never); err != nil || a.held != 60 {
		t.Fatalf("a: %v held %d", err, a.held)
	}
	// o does not fit; no frame is overdrawing, so o may.
	if _, err := b.acquire(&o, 60, never); err != nil || b.used.Load() != 120 {
		t.Fatalf("owner: %v used %d", err, b.used.Load())
	}
	// Now nothing more is granted past the limit...
	d1 := acquireAsync(b, &w1, 30, never)
	eventually(t, "w1 waiting", func() bool { return b.waiting.Load() == 1 })
	// ...and later small requests queue behind it rather than overtake.
	d2 := acquireAsync(b, &w2, 1, never)
	eventually(t, "w2 waiting", func() bool { return b.waiting.Load() == 2 })
	// The owner itself never waits: the others wait for it.
	if _, err := b.acquire(&o, 1000, never); err != nil || o.held != 1060 {
		t.Fatalf("owner growth: %v held %d", err, o.held)
	}
	notYet(t, d1, "w1")
	notYet(t, d2, "w2")

	// a's release leaves 1060 > 100 used: still nothing fits, and the
	// owner slot is taken.
	b.release(&a)
	notYet(t, d1, "w1")
	// The owner's release frees the slot and the budget: both fit.
	b.release(&o)
	granted(t, d1, "w1")
	granted(t, d2, "w2")
	if got := b.used.Load(); got != 31 || b.waiting.Load() != 0 {
		t.Fatalf("used %d waiting %d", got, b.waiting.Load())
	}

	// A waiter that is stopped gives up with nothing added.
	if _, err := b.acquire(&o, 200, never); err != nil { // the new owner
		t.Fatal(err)
	}
	stop := make(chan struct{})
	d3 := acquireAsync(b, &w3, 10, stop)
	eventually(t, "w3 waiting", func() bool { return b.waiting.Load() == 1 })
	close(stop)
	if err := <-d3; !errors.Is(err, errReadStopped) || w3.held != 0 || b.waiting.Load() != 0 {
		t.Fatalf("stopped: %v held %d waiting %d", err, w3.held, b.waiting.Load())
	}
	b.release(&o)
	b.release(&w1)
	b.release(&w2)
	b.release(&w3)
	if got := b.used.Load(); got != 0 {
		t.Fatalf("used %d after every release", got)
	}
	if got := b.waits.Load(); got != 3 {
		t.Fatalf("waits = %d, want 3", got)
	}

	// No limit: never waits, counts nothing.
	u := newBudget(0)
	if _, err := u.acquire(&a, 1<<40, never); err != nil || u.used.Load() != 0 {
		t.Fatalf("unlimited: %v used %d", err, u.used.Load())
	}
}

// produceFrame is a Produce v9 request whose records are n bytes.
func produceFrame(f *kmsg.RequestFormatter, n int, corr int32) []byte {
	p := kmsg.NewPtrProduceRequest()
	p.Acks, p.TimeoutMillis = 1, 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, n)
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	return frame(f, p, 9, corr)
}

// TestBudgetBlocksAndResumes: with the budget spent by requests being
// handled, another connection's request is not read until they complete,
// then it is answered; the wait does not count against its read timeout.
func TestBudgetBlocksAndResumes(t *testing.T) {
	const size = 600 << 10
	gate := make(chan struct{})
	var inHandle atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		p, ok := req.Msg.(*kmsg.ProduceRequest)
		if !ok {
			return nil, nil
		}
		inHandle.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return &Reply{Response: p.ResponseKind()}, nil
	}}
	const readTimeout = 300 * time.Millisecond
	ts := startServer(t, Config{MaxRequestBytes: 1 << 20, MaxQueuedRequestBytes: 1 << 20, RequestReadTimeout: readTimeout}, h)

	// a fits; b does not, and takes the owner slot; c must wait.
	conns := []*rawClient{dial(t, ts.addr), dial(t, ts.addr), dial(t, ts.addr)}
	conns[0].write(produceFrame(conns[0].f, size, 1))
	eventually(t, "a in Handle", func() bool { return inHandle.Load() == 1 })
	conns[1].write(produceFrame(conns[1].f, size, 2))
	eventually(t, "b in Handle", func() bool { return inHandle.Load() == 2 })
	conns[2].write(produceFrame(conns[2].f, size, 3))
	eventually(t, "c waiting for budget", func() bool { return ts.Stats().RequestBudgetWaiting == 1 })

	st := ts.Stats()
	if st.QueuedRequestBytes > st.QueuedRequestBytesLimit+(1<<20) || st.QueuedRequestBytesLimit != 1<<20 {
		t.Fatalf("queued %d, limit %d", st.QueuedRequestBytes, st.QueuedRequestBytesLimit)
	}
	// Hold c back for longer than its read timeout.
	start := time.Now()
	for time.Since(start) < 2*readTimeout {
		if inHandle.Load() != 2 || ts.Stats().RequestBudgetWaiting != 1 {
			t.Fatalf("c was read while the budget was spent: in Handle %d", inHandle.Load())
		}
		time.Sleep(10 * time.Millisecond) // observing that nothing changes for a while
	}
	close(gate)
	for i, c := range conns {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if corr := c.recv(resp); corr != int32(i+1) {
			t.Fatalf("conn %d: corr %d", i, corr)
		}
	}
	eventually(t, "budget given back", func() bool { return ts.Stats().QueuedRequestBytes == 0 })
	st = ts.Stats()
	if st.RequestReadTimeouts != 0 || st.RequestBudgetWaits == 0 || st.RequestBudgetWaiting != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestShutdownWhileWaitingForBudget: a reader waiting for budget stops at
// Shutdown; the requests being handled are answered.
func TestShutdownWhileWaitingForBudget(t *testing.T) {
	gate := make(chan struct{})
	var inHandle atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		if p, ok := req.Msg.(*kmsg.ProduceRequest); ok {
			inHandle.Add(1)
			<-gate
			return &Reply{Response: p.ResponseKind()}, nil
		}
		return nil, nil
	}}
	s, ln, served := manualServer(t, Config{MaxRequestBytes: 1 << 20, MaxQueuedRequestBytes: 1 << 20}, h)
	a, b, c := dial(t, ln.Addr().String()), dial(t, ln.Addr().String()), dial(t, ln.Addr().String())
	a.write(produceFrame(a.f, 600<<10, 1))
	eventually(t, "a in Handle", func() bool { return inHandle.Load() == 1 })
	b.write(produceFrame(b.f, 600<<10, 2))
	eventually(t, "b in Handle", func() bool { return inHandle.Load() == 2 })
	c.write(produceFrame(c.f, 600<<10, 3))
	eventually(t, "c waiting", func() bool { return s.Stats().RequestBudgetWaiting == 1 })

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	eventually(t, "c stopped waiting", func() bool { return s.Stats().RequestBudgetWaiting == 0 })
	c.expectClosed()
	close(gate)
	for i, cl := range []*rawClient{a, b} {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if corr := cl.recv(resp); corr != int32(i+1) {
			t.Fatalf("corr %d", corr)
		}
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
	if got := inHandle.Load(); got != 2 {
		t.Fatalf("%d requests handled, want 2", got)
	}
}

// TestBudgetBoundsHeap: 64 connections each pipeline 2 produce requests of
// 1 MiB at a handler that holds them until the readers are blocked (by the
// budget) or every connection has one request in Handle. With a 4 MiB budget
// the heap stays within a few MiB of the budget; with no budget the same load
// holds all 64 MiB at once, which shows that the cap measures what it
// should.
//
// The cap: frames charged at once, at most limit plus one overdrawing frame
// (2*size with the frame being handled); their buffers, at most twice that
// (bufpool's power-of-two classes); and as much again of those buffers idle
// in bufpool, which takes a new one only when none is kept. A frame that
// took a kept buffer before it was charged (as the merged reuse once did)
// grew the heap by 149 MiB.
func TestBudgetBoundsHeap(t *testing.T) {
	const (
		conns    = 64
		perConn  = 2
		size     = 1 << 20
		limit    = 4 << 20
		inUse    = 2 * (limit + 2*size)
		overhead = 24 << 20 // connections' buffers, goroutines, GC slack
		heapCap  = 2*inUse + overhead
	)
	run := func(t *testing.T, budget int64) (peakHeap, peakHeld uint64) {
		var (
			mu            sync.Mutex
			held, maxHeld int
			inHandle      int
		)
		open := make(chan struct{})
		var openOnce sync.Once
		h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
			p, ok := req.Msg.(*kmsg.ProduceRequest)
			if !ok {
				return nil, nil
			}
			n := len(p.Topics[0].Partitions[0].Records)
			mu.Lock()
			held += n
			maxHeld = max(maxHeld, held)
			inHandle++
			mu.Unlock()
			select {
			case <-open:
			case <-ctx.Done():
			}
			mu.Lock()
			held -= n
			inHandle--
			mu.Unlock()
			return &Reply{Response: p.ResponseKind()}, nil
		}}
		ts := startServer(t, Config{MaxRequestBytes: 2 * size, MaxQueuedRequestBytes: budget}, h)
		clients := make([]*rawClient, conns)
		for i := range clients {
			clients[i] = dial(t, ts.addr)
		}

		// Two collections: bufpool (a sync.Pool) keeps buffers across
		// one, and the frames an earlier run gave back would otherwise
		// sit in the base and raise the collector's target for this one.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapInuse

		// Sample the heap until the replies are all read.
		stopSampling := make(chan struct{})
		sampled := make(chan uint64)
		go func() {
			var peak uint64
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-stopSampling:
					sampled <- peak
					return
				case <-tick.C:
				}
			}
		}()
		// Open the gate once readers are blocked by the budget or every
		// connection has a request in Handle.
		go func() {
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				n := inHandle
				mu.Unlock()
				if n == conns || ts.Stats().RequestBudgetWaiting > 0 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			openOnce.Do(func() { close(open) })
		}()

		f := kmsg.NewRequestFormatter()
		req := produceFrame(f, size, 7) // shared by every client: the client side allocates nothing per request
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for _, c := range clients {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for range perConn {
					c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
					if _, err := c.conn.Write(req); err != nil {
						errs <- err
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for range perConn {
					// 64 MiB of frames to read first: under -race
					// on a loaded machine that took more than
					// readFrame's 5 s.
					if _, _, err := c.readFrameWithin(30 * time.Second); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(stopSampling)
		peak := <-sampled
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return peak - min(peak, base), uint64(maxHeld)
	}

	t.Run("bounded", func(t *testing.T) {
		heap, held := run(t, limit)
		t.Logf("budget %d MiB: heap grew by at most %.1f MiB; at most %.1f MiB of records in Handle at once", limit>>20, float64(heap)/(1<<20), float64(held)/(1<<20))
		if held > limit+2*size {
			t.Errorf("%d bytes of requests in Handle at once, budget %d", held, limit)
		}
		if heap > heapCap {
			t.Errorf("heap grew by %.1f MiB, cap %.1f MiB", float64(heap)/(1<<20), float64(heapCap)/(1<<20))
		}
	})
	t.Run("unbounded", func(t *testing.T) {
		heap, held := run(t, -1)
		t.Logf("no budget: heap grew by at most %.1f MiB; at most %.1f MiB of records in Handle at once", float64(heap)/(1<<20), float64(held)/(1<<20))
		// The same load without a budget passes the cap: the bounded
		// case is not under it by accident of measurement.
		if heap <= heapCap {
			t.Errorf("without a budget the heap grew by only %.1f MiB: the cap does not discriminate", float64(heap)/(1<<20))
		}
	})
}
