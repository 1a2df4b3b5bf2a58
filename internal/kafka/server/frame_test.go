package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/bufpool"
)

// allVersions serves every key and version the codec knows.
func allVersions(key int16) (int16, int16, bool) {
	r := kmsg.RequestForKey(key)
	if r == nil {
		return 0, 0, false
	}
	return 0, r.MaxVersion(), true
}

// testRanges serves testVersions, as the server would.
func testRanges(key int16) (int16, int16, bool) {
	for _, k := range testVersions {
		if k.ApiKey == key {
			return k.MinVersion, k.MaxVersion, true
		}
	}
	return 0, 0, false
}

// header builds a request header by hand: key, version, correlation id,
// then the rest verbatim.
func header(key, version int16, corr int32, rest ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	return append(b, rest...)
}

// body strips the size prefix of a frame encoded by a RequestFormatter.
func body(f *kmsg.RequestFormatter, req kmsg.Request, v int16, corr int32) []byte {
	return frame(f, req, v, corr)[4:]
}

func TestParseRequest(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("cid"))
	nullID := kmsg.NewRequestFormatter() // null client id

	av3 := body(f, kmsg.NewPtrApiVersionsRequest(), 3, 7)
	// The same request with a non-empty header tag section: one field,
	// tag 5, two bytes.
	hdrLen := headerMin + 2 + len("cid")
	av3Tagged := append(append(append([]byte{}, av3[:hdrLen]...), 1, 5, 2, 0xaa, 0xbb), av3[hdrLen+1:]...)

	tests := []struct {
		name     string
		frame    []byte
		versions func(int16) (int16, int16, bool)
		wantErr  error
		check    func(t *testing.T, r *Request)
	}{
		{name: "api versions v0", frame: body(f, kmsg.NewPtrApiVersionsRequest(), 0, 1), check: func(t *testing.T, r *Request) {
			if r.Key != 18 || r.Version != 0 || r.CorrelationID != 1 || r.ClientID != "cid" {
				t.Errorf("header %+v", r)
			}
			if _, ok := r.Msg.(*kmsg.ApiVersionsRequest); !ok || r.Msg.GetVersion() != 0 {
				t.Errorf("msg %T v%d", r.Msg, r.Msg.GetVersion())
			}
		}},
		{name: "flexible header v2", frame: av3, check: func(t *testing.T, r *Request) {
			if r.CorrelationID != 7 || r.Msg.GetVersion() != 3 {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "flexible header with tags", frame: av3Tagged, check: func(t *testing.T, r *Request) {
			if r.ClientID != "cid" || r.Msg.GetVersion() != 3 {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "null client id", frame: body(nullID, heartbeat(1), 4, 2), check: func(t *testing.T, r *Request) {
			if r.ClientID != "" || r.Msg.(*kmsg.HeartbeatRequest).Group != "1" {
				t.Errorf("got %+v", r)
			}
		}},
		// Built by hand: kmsg's RequestFormatter drops the body (and
		// the size) of this one request.
		{name: "controlled shutdown v0 has header v0", versions: allVersions,
			frame: header(7, 0, 9, 0, 0, 0, 3), check: func(t *testing.T, r *Request) {
				if r.ClientID != "" || r.Msg.(*kmsg.ControlledShutdownRequest).BrokerID != 3 {
					t.Errorf("got %+v", r)
				}
			}},
		{name: "empty", frame: nil, wantErr: ErrMalformedHeader},
		{name: "short header", frame: header(18, 0, 1)[:7], wantErr: ErrMalformedHeader},
		{name: "unknown key", frame: header(999, 0, 1, 0xff, 0xff), wantErr: ErrUnknownKey},
		{name: "negative key", frame: header(-1, 0, 1, 0xff, 0xff), wantErr: ErrUnknownKey},
		{name: "key not served", frame: body(f, kmsg.NewPtrFetchRequest(), 4, 1), wantErr: ErrUnknownKey},
		{name: "key served but unknown to codec", versions: func(int16) (int16, int16, bool) { return 0, 3, true },
			frame: header(30000, 0, 1, 0xff, 0xff), wantErr: ErrUnknownKey},
		{name: "version above max", frame: body(f, heartbeat(1), 4, 5)[:headerMin], wantErr: ErrUnsupportedVersion,
			versions: func(int16) (int16, int16, bool) { return 0, 3, true }},
		{name: "version below min", frame: body(f, kmsg.NewPtrDescribeConfigsRequest(), 0, 5), wantErr: ErrUnsupportedVersion},
		{name: "version above codec max", frame: header(60, 99, 1, 0xff, 0xff, 0), wantErr: ErrUnsupportedVersion},
		{name: "api versions far above max", frame: header(18, 127, 42, 0, 3, 'c', 'i', 'd', 0xde, 0xad), wantErr: ErrUnsupportedVersion,
			check: func(t *testing.T, r *Request) {
				if r == nil || r.Key != 18 || r.Version != 127 || r.CorrelationID != 42 || r.Msg != nil {
					t.Errorf("got %+v", r)
				}
			}},
		{name: "api versions above max with broken client id", frame: header(18, 5, 43, 0x7f), wantErr: ErrUnsupportedVersion,
			check: func(t *testing.T, r *Request) {
				if r == nil || r.CorrelationID != 43 {
					t.Errorf("got %+v", r)
				}
			}},
		{name: "client id cut short", frame: header(18, 0, 1, 0x00), wantErr: ErrMalformedHeader},
		{name: "client id past end", frame: header(18, 0, 1, 0x00, 0x05, 'a'), wantErr: ErrMalformedHeader},
		{name: "client id length -2", frame: header(18, 0, 1, 0xff, 0xfe), wantErr: ErrMalformedHeader},
		{name: "huge header tag count", frame: header(18, 3, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f), wantErr: ErrMalformedHeader},
		{name: "header tag count past end", frame: header(18, 3, 1, 0xff, 0xff, 2, 1, 0), wantErr: ErrMalformedHeader},
		{name: "header tag size past end", frame: header(18, 3, 1, 0xff, 0xff, 1, 1, 9, 0), wantErr: ErrMalformedHeader},
		{name: "header tag varint too long", frame: header(18, 3, 1, 0xff, 0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), wantErr: ErrMalformedHeader},
		{name: "no header tags", frame: header(18, 3, 1, 0xff, 0xff), wantErr: ErrMalformedHeader},
		{name: "garbage body", frame: header(3, 1, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff), wantErr: ErrMalformedBody,
			check: func(t *testing.T, r *Request) {
				if r == nil || r.Key != 3 || r.Msg != nil {
					t.Errorf("got %+v", r)
				}
			}},
		{name: "truncated body", frame: body(f, heartbeat(1), 4, 5)[:20], wantErr: ErrMalformedBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			versions := tt.versions
			if versions == nil {
				versions = testRanges
			}
			r, err := ParseRequest(tt.frame, versions)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (r == nil || r.Msg == nil || r.Msg.Key() != r.Key) {
				t.Fatalf("request %+v", r)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// TestReadFrameAllocation checks that a size prefix is checked before any
// allocation, that an accepted size is only allocated as bytes arrive, and
// that every allocation is reserved first.
func TestReadFrameAllocation(t *testing.T) {
	prefix := func(size uint32, rest ...byte) *bufio.Reader {
		return bufio.NewReader(bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, size), rest...)))
	}
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	const limit = 100 << 20
	var sb [4]byte

	for _, size := range []uint32{1<<31 - 1, 1 << 31, 0xffffffff, limit + 1} {
		var err error
		r := prefix(size)
		if n := allocated(func() { _, err = readFrame(r, &sb, limit, nil, false) }); n > 1<<10 {
			t.Errorf("size %#x: allocated %d bytes", size, n)
		}
		if !errors.Is(err, ErrFrameSize) {
			t.Errorf("size %#x: err = %v", size, err)
		}
	}

	// A frame at the limit that never arrives costs the first chunk only,
	// and that is all that is reserved.
	var err error
	var reserved int
	reserve := func(n int) error { reserved += n; return nil }
	r := prefix(limit, 1, 2, 3)
	if n := allocated(func() { _, err = readFrame(r, &sb, limit, reserve, false) }); n > 4<<10 {
		t.Errorf("claimed %d bytes, sent 3: allocated %d", limit, n)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want unexpected EOF", err)
	}
	if reserved != minFrameChunk {
		t.Errorf("claimed %d bytes, sent 3: reserved %d, want %d", limit, reserved, minFrameChunk)
	}

	// Growth keeps the content; a frame split across many reads and
	// chunks comes back whole, with no more reserved than its capacity.
	want := make([]byte, 300<<10+7)
	for i := range want {
		want[i] = byte(i * 7)
	}
	reserved = 0
	r = bufio.NewReader(io.MultiReader(bytes.NewReader(binary.BigEndian.AppendUint32(nil, uint32(len(want)))), iotest.HalfReader(bytes.NewReader(want))))
	got, err := readFrame(r, &sb, limit, reserve, false)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("large frame: err %v, equal %v", err, bytes.Equal(got, want))
	}
	if reserved != cap(got) || cap(got) != len(want) {
		t.Fatalf("large frame: reserved %d for a buffer of %d, frame %d", reserved, cap(got), len(want))
	}
	// A refused reservation ends the read before allocating.
	refuse := errors.New("no budget")
	if _, err := readFrame(prefix(10, 1, 2), &sb, limit, func(int) error { return refuse }, false); !errors.Is(err, refuse) {
		t.Fatalf("refused reservation: %v", err)
	}
	if got, err := readFrame(prefix(0), &sb, limit, nil, false); err != nil || len(got) != 0 {
		t.Fatalf("empty frame: %v %d", err, len(got))
	}
	if _, err := readFrame(bufio.NewReader(bytes.NewReader([]byte{0, 0})), &sb, limit, nil, false); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut prefix: %v", err)
	}
}

func TestAppendResponseHeader(t *testing.T) {
	tests := []struct {
		name    string
		resp    kmsg.Response
		version int16
		tagByte bool
	}{
		{"heartbeat v0 header v0", kmsg.NewPtrHeartbeatResponse(), 0, false},
		{"heartbeat v4 header v1", kmsg.NewPtrHeartbeatResponse(), 4, true},
		{"api versions v3 header v0", kmsg.NewPtrApiVersionsResponse(), 3, false},
		{"metadata v9 header v1", kmsg.NewPtrMetadataResponse(), 9, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.resp.SetVersion(tt.version)
			b := appendResponse([]byte("junk"), 0x01020304, tt.resp)[4:]
			if size := binary.BigEndian.Uint32(b); int(size) != len(b)-4 {
				t.Fatalf("size %d, frame %d", size, len(b)-4)
			}
			if corr := binary.BigEndian.Uint32(b[4:]); corr != 0x01020304 {
				t.Fatalf("corr %#x", corr)
			}
			rest := b[8:]
			if tt.tagByte {
				if rest[0] != 0 {
					t.Fatalf("no empty tag section")
				}
				rest = rest[1:]
			}
			if want := tt.resp.AppendTo(nil); !bytes.Equal(rest, want) {
				t.Fatalf("body % x, want % x", rest, want)
			}
		})
	}
}

func TestUnsupportedApiVersionsLayout(t *testing.T) {
	b := appendResponse(nil, 9, unsupportedApiVersions(testVersions))
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(b[8:]); err != nil {
		t.Fatal(err)
	}
	// Only ApiVersions' own range (KIP-511, as Kafka): a client retries at
	// its max and learns the rest, features included, from that answer.
	if resp.ErrorCode != 35 || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 {
		t.Fatalf("got %+v", resp)
	}
}

// TestReadFrameReuse: frames read with reuse land in kept buffers when
// there are some, and a kept buffer larger than the frame never reads into
// the next one.
func TestReadFrameReuse(t *testing.T) {
	want := bytes.Repeat([]byte("x"), 100<<10)
	framed := append([]byte{0, 1, 0x90, 0}, want...)
	r := bufio.NewReader(bytes.NewReader(bytes.Repeat(framed, 4)))
	var sb [4]byte
	var reserved int
	for range 4 {
		got, err := readFrame(r, &sb, 1<<30, func(n int) error { reserved += n; return nil }, true)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("readFrame: %v, %d bytes", err, len(got))
		}
		bufpool.Put(got)
	}
	// Reused or not, every frame was charged in full, and only once.
	if reserved != 4*len(want) {
		t.Fatalf("reserved %d bytes for 4 frames of %d", reserved, len(want))
	}
}

// TestProduceFramesRecycled: a produce frame is given back to bufpool once
// Handle returns, so a later frame of its size class is read into it. The
// handler keeps every frame's records, so the garbage collector cannot free
// a frame and give its address to a new allocation: the same address twice
// means a frame was reused. A leftover of a merge once cleared the frame
// before bufpool.Put, which then did nothing and no frame was ever reused.
// Each frame's records also carry their own byte, checked in Handle, so a
// reused buffer must hold the new frame whole.
func TestProduceFramesRecycled(t *testing.T) {
	const (
		frames = 32
		size   = 100 << 10 // above bufpool.MinSize
	)
	var (
		mu   sync.Mutex
		kept [][]byte
		bad  []string
	)
	h := &fakeHandler{handle: func(_ context.Context, req *Request) (*Reply, error) {
		p, ok := req.Msg.(*kmsg.ProduceRequest)
		if !ok {
			return nil, nil
		}
		recs := p.Topics[0].Partitions[0].Records
		want := byte(req.CorrelationID)
		mu.Lock()
		if len(recs) != size || recs[0] != want || recs[size-1] != want || bytes.Count(recs, []byte{want}) != size {
			bad = append(bad, fmt.Sprintf("request %d: %d bytes of records, not all %#x", req.CorrelationID, len(recs), want))
		}
		kept = append(kept, recs)
		mu.Unlock()
		return &Reply{Response: p.ResponseKind()}, nil
	}}
	ts := startServer(t, Config{}, h)
	c := dial(t, ts.addr)
	for i := range frames {
		p := kmsg.NewPtrProduceRequest()
		p.Acks, p.TimeoutMillis = 1, 1000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "t"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = bytes.Repeat([]byte{byte(i + 1)}, size)
		pt.Partitions = append(pt.Partitions, pp)
		p.Topics = append(p.Topics, pt)
		c.write(frame(c.f, p, 9, int32(i+1)))
		if _, _, err := c.readFrame(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("%d frames read wrong, first: %s", len(bad), bad[0])
	}
	addrs := map[*byte]bool{}
	for _, r := range kept {
		addrs[&r[0]] = true
	}
	// sync.Pool drops a quarter of what it is given under the race
	// detector, and a buffer put back on one P may not be seen from
	// another: some frames are new, but not all 32.
	if len(addrs) == frames {
		t.Fatalf("%d produce frames read into %d buffers: frames are not given back to bufpool", frames, len(addrs))
	}
	t.Logf("%d produce frames read into %d buffers", frames, len(addrs))
}

// TestReadLargeFrameAllocatesNothing: a 1 MiB Produce frame arrives in
// pieces and grows its buffer as they come; with reuse every growth (not
// only the last) takes a kept buffer and gives the one it replaces back, so
// in steady state reading such frames allocates almost no bytes (before:
// 64, 128, 256 and 512 KiB per frame, 89% of the broker's allocated bytes
// under compressed produce, bench/results/2026-12-06-method.md). The first
// piece is at least bufpool.MinSize too: what happens to be buffered at a
// frame's start is often a little under 64 KiB, which the pool does not
// keep (62,431 bytes allocated per frame before; the bound was 64 KiB and
// let it through, and the test ran only without -race, which CI never did).
func TestReadLargeFrameAllocatesNothing(t *testing.T) {
	if raceBuild {
		t.Skip("sync.Pool drops buffers at random under the race detector")
	}
	// One P: sync.Pool keeps a buffer in the P that put it, and a
	// goroutine that moved to the other P misses it (a miss of the pool,
	// not of the reuse this tests).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	want := bytes.Repeat([]byte("y"), 1<<20)
	framed := append(binary.BigEndian.AppendUint32(nil, uint32(len(want))), want...)
	const frames = 40
	src := bytes.NewReader(bytes.Repeat(framed, frames))
	r := bufio.NewReaderSize(src, 64<<10)
	var sb [4]byte
	read := func() {
		got, err := readFrame(r, &sb, 1<<30, nil, true)
		if err != nil || len(got) != len(want) {
			t.Fatalf("readFrame: %v, %d bytes", err, len(got))
		}
		bufpool.Put(got)
	}
	for range 5 { // warm the pool
		read()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 20 {
		read()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 20; per > 4<<10 {
		t.Fatalf("%d bytes allocated per 1 MiB frame, want at most 4 KiB", per)
	}
}
