package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/console"
)

// tinyRecordsBody is a produce body of n records {"value":1}: 12 bytes a
// record, so 8 MiB holds about 699,000 of them, 70 times the record limit.
func tinyRecordsBody(size int) []byte {
	const rec = `{"value":1},`
	var b bytes.Buffer
	b.Grow(size)
	b.WriteString(`{"records":[`)
	for b.Len()+len(rec)+2 <= size {
		b.WriteString(rec)
	}
	b.Truncate(b.Len() - 1) // the last comma
	b.WriteString("]}")
	return b.Bytes()
}

// TestProduceManyTinyRecordsBoundedAlloc: an 8 MiB body of about 699,000
// tiny records is refused at the 10,000-record limit without decoding the
// rest. Before the body was streamed, the whole body was parsed first (a
// map of every top-level value, then a slice of every record): one request
// allocated about 300 MiB and left the process's RSS at 286 MB.
//
// Not parallel: it measures the process's allocations.
func TestProduceManyTinyRecordsBoundedAlloc(t *testing.T) {
	const limit = 48 << 20 // the body (8 MiB), 10,000 records decoded, slack
	e := newEnv(t)
	topic := e.topic(1)
	body := tinyRecordsBody(8<<20 - 1024)
	path := e.url + "/api/v1/topics/" + topic + "/records"

	post := func() int {
		req, err := http.NewRequest("POST", path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	post() // warm up: connections, the topic's metadata

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	status := post()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("one %d-byte body of tiny records: status %d, %.1f MiB allocated", len(body), status, float64(alloc)/(1<<20))
	if status != http.StatusBadRequest {
		t.Errorf("status %d, want 400 too_many_records", status)
	}
	if alloc > limit {
		t.Errorf("one request allocated %.1f MiB, limit %d MiB", float64(alloc)/(1<<20), limit>>20)
	}
	// Nothing was produced.
	ends, err := e.adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Offset != 0 {
		t.Errorf("end offset %d after refused requests, want 0", o.Offset)
	}
}

// TestProduceConcurrentBodiesBounded: 8 clients post 8 MiB bodies of tiny
// records at once to a console whose produce budget holds two bodies. The
// heap stays within the budget and a fixed overhead; every client gets its
// answer (400 too_many_records once its turn comes). Before the budget and
// the streaming decoder, the same load took the process to 1.94 GB.
//
// Not parallel: it measures the process's heap.
func TestProduceConcurrentBodiesBounded(t *testing.T) {
	const (
		clients  = 8
		size     = 8<<20 - 1024
		budget   = 2 * (8 << 20)
		overhead = 64 << 20 // decoded records, buffers, GC slack
	)
	e := newEnv(t, func(c *console.Config) { c.MaxProduceBytes = budget })
	topic := e.topic(1)
	body := tinyRecordsBody(size) // shared: the clients allocate nothing per request
	path := e.url + "/api/v1/topics/" + topic + "/records"

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := make(chan struct{})
	peakc := make(chan uint64)
	go func() {
		var peak uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				peakc <- peak
				return
			case <-tick.C:
			}
		}
	}()

	statuses := make(chan int, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest("POST", path, bytes.NewReader(body))
			if err != nil {
				statuses <- -1
				return
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.http.Do(req)
			if err != nil {
				t.Error(err)
				statuses <- -1
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(stop)
	peak := <-peakc
	close(statuses)
	for s := range statuses {
		if s != http.StatusBadRequest {
			t.Errorf("status %d, want 400 too_many_records", s)
		}
	}
	grew := peak - min(peak, base)
	t.Logf("%d concurrent %d-byte bodies, budget %d MiB: heap grew by at most %.1f MiB", clients, size, budget>>20, float64(grew)/(1<<20))
	if grew > budget+overhead {
		t.Errorf("heap grew by %.1f MiB, cap %d MiB", float64(grew)/(1<<20), (budget+overhead)>>20)
	}
	inUse, peakCharged := e.con.ProduceBudget()
	if inUse != 0 || peakCharged > budget || peakCharged < size {
		t.Errorf("produce budget: %d bytes held after the requests, at most %d at once (budget %d, body %d)", inUse, peakCharged, budget, size)
	}
}

// TestProduceBudgetWaits: with the produce budget held by a request whose
// body is still arriving, another request waits for its share and goes on
// once the budget is given back; one that waits past the request timeout
// gets 503 produce_busy with Retry-After, and the budget is whole again
// afterwards.
func TestProduceBudgetWaits(t *testing.T) {
	t.Parallel()
	const body = 1 << 20
	e := newEnv(t, func(c *console.Config) {
		c.MaxBodyBytes, c.MaxProduceBytes, c.RequestTimeout = body, body, 3*time.Second
	})
	topic := e.topic(1)
	path := e.url + "/api/v1/topics/" + topic + "/records"

	// hold starts a request with a chunked body (charged MaxBodyBytes, the
	// whole budget) and returns the writer of the rest of its body and
	// its status.
	hold := func() (*io.PipeWriter, <-chan int) {
		pr, pw := io.Pipe()
		status := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("POST", path, pr)
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.http.Do(req)
			if err != nil {
				status <- -1
				return
			}
			resp.Body.Close()
			status <- resp.StatusCode
		}()
		pw.Write([]byte(`{"records":[`))
		eventually(t, 10*time.Second, func() error {
			if used, _ := e.con.ProduceBudget(); used != body {
				return fmt.Errorf("budget held: %d, want %d", used, body)
			}
			return nil
		})
		return pw, status
	}
	post := func() (int, string, http.Header) {
		var out map[string]any
		req, _ := http.NewRequest("POST", path, strings.NewReader(`{"records":[{"value":"b"}]}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.http.Do(req)
		if err != nil {
			t.Error(err)
			return -1, "", nil
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&out)
		code, _ := out["code"].(string)
		return resp.StatusCode, code, resp.Header
	}

	// Waits, then goes on.
	pw, held := hold()
	waiter := make(chan int, 1)
	go func() { s, _, _ := post(); waiter <- s }()
	eventually(t, 10*time.Second, func() error {
		if n := e.con.ProduceWaiting(); n != 1 {
			return fmt.Errorf("%d requests waiting for budget, want 1", n)
		}
		return nil
	})
	pw.Write([]byte(`{"value":"a"}]}`))
	pw.Close()
	if s := <-held; s != http.StatusOK {
		t.Errorf("holding request: status %d", s)
	}
	if s := <-waiter; s != http.StatusOK {
		t.Errorf("waiting request: status %d, want 200 once the budget was given back", s)
	}

	// Waits past the request timeout: 503 with Retry-After.
	pw, held = hold()
	start := time.Now()
	s, code, h := post()
	if s != http.StatusServiceUnavailable || code != "produce_busy" || h.Get("Retry-After") == "" {
		t.Errorf("request over the budget: status %d %q, Retry-After %q; want 503 produce_busy with Retry-After", s, code, h.Get("Retry-After"))
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("answered 503 after %v, before the request timeout", d)
	}
	pw.CloseWithError(errors.New("client gave up"))
	<-held
	eventually(t, 10*time.Second, func() error {
		if used, _ := e.con.ProduceBudget(); used != 0 {
			return fmt.Errorf("%d bytes of budget held after every request ended", used)
		}
		return nil
	})
	if s, _, _ := post(); s != http.StatusOK {
		t.Errorf("after the budget was given back: status %d", s)
	}
}
