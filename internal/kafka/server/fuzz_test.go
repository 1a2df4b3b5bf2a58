package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedFrames are real request frames (size prefix stripped) encoded by kmsg,
// plus a few hand-made edge cases, keyed by a file-name-safe label.
func seedFrames() map[string][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("seed-client"))
	seeds := map[string][]byte{}
	add := func(name string, req kmsg.Request, versions ...int16) {
		for _, v := range versions {
			seeds[fmt.Sprintf("%s-v%d", name, v)] = body(f, req, v, int32(len(seeds)+1))
		}
	}

	add("api-versions", &kmsg.ApiVersionsRequest{ClientSoftwareName: "strom", ClientSoftwareVersion: "1"}, 0, 3, 4)

	meta := kmsg.NewPtrMetadataRequest()
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr("orders")
	meta.Topics = append(meta.Topics, topic)
	add("metadata", meta, 0, 4, 9, 12)

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = -1
	produce.TimeoutMillis = 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "orders"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = []byte("not really a record batch, but bytes all the same")
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	add("produce", produce, 3, 7, 9)

	fetch := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset = 42
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	add("fetch", fetch, 4, 11, 12)

	add("heartbeat", heartbeat(7), 0, 4)

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType = "g", "consumer"
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name, jp.Metadata = "range", []byte{0, 1, 2, 3}
	join.Protocols = append(join.Protocols, jp)
	add("join-group", join, 5, 9)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group = "g"
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "orders"
	ct.Partitions = append(ct.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	commit.Topics = append(commit.Topics, ct)
	add("offset-commit", commit, 2, 8)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"g"}
	add("find-coordinator", fc, 4)

	create := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "t", 3, 1
	cfg := kmsg.NewCreateTopicsRequestTopicConfig()
	cfg.Name, cfg.Value = "cleanup.policy", kmsg.StringPtr("compact")
	ctt.Configs = append(ctt.Configs, cfg)
	create.Topics = append(create.Topics, ctt)
	add("create-topics", create, 0, 5)

	add("sasl-handshake", &kmsg.SASLHandshakeRequest{Mechanism: "PLAIN"}, 1)

	av3 := seeds["api-versions-v3"]
	hdr := headerMin + 2 + len("seed-client")
	seeds["api-versions-v3-header-tags"] = append(append(append([]byte{}, av3[:hdr]...), 1, 5, 2, 0xaa, 0xbb), av3[hdr+1:]...)
	seeds["api-versions-v127"] = header(apiVersionsKey, 127, 1, 0, 1, 'x', 0xde, 0xad)
	seeds["controlled-shutdown-v0"] = header(7, 0, 1, 0, 0, 0, 3)
	seeds["null-client-id"] = body(kmsg.NewRequestFormatter(), heartbeat(1), 4, 1)
	return seeds
}

// FuzzRequestFrame feeds arbitrary bytes to ParseRequest as a request frame,
// serving every key and version the codec knows. It must never panic, and
// what it accepts must be consistent and re-encodable.
func FuzzRequestFrame(f *testing.F) {
	for _, seed := range seedFrames() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := ParseRequest(frame, allVersions)
		if err != nil {
			partial := errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrMalformedBody)
			if (req != nil) != partial || (req != nil && req.Msg != nil) {
				t.Fatalf("err %v with request %+v", err, req)
			}
			return
		}
		lo, hi, _ := allVersions(req.Key)
		switch {
		case req.Msg == nil, req.Msg.Key() != req.Key, req.Msg.GetVersion() != req.Version:
			t.Fatalf("inconsistent request %+v", req)
		case req.Version < lo || req.Version > hi:
			t.Fatalf("accepted version %d outside %d-%d", req.Version, lo, hi)
		}
		req.Msg.AppendTo(nil)
	})
}

// TestTaggedFieldCountBeyondFrame is the input the fuzzer found:
// CreatePartitions v3 whose last tagged-field count claims 2^32-1 fields.
// Upstream kmsg v1.15.0 kept looping once per claimed field after running
// out of bytes, about a minute of CPU; Strom patched it, and v1.15.1 stops
// at the first failed read itself. The deadline is generous for a loaded
// machine: the decode takes microseconds.
func TestTaggedFieldCountBeyondFrame(t *testing.T) {
	frame := []byte("\x00%\x00\x03\x00\x00\x00\b\x00\vseed-cliens\x00\x00\x00\x01\x00\x00t\xff\xff\xff\xff\x0f")
	done := make(chan error, 1)
	go func() {
		_, err := ParseRequest(frame, allVersions)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrMalformedBody) {
			t.Fatalf("ParseRequest: %v, want ErrMalformedBody", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ParseRequest still decoding after 10s: the kmsg tagged-field loop is back")
	}
}

// TestArrayCountBeyondParsedData: an array count may claim as many elements
// as the bytes left could encode while the first element already fails.
// Upstream kmsg allocates the claimed count of elements before reading any.
// v1.15.1 checks the count against the bytes left divided by an element's
// smallest encoding (2 bytes for a ProduceRequestTopic, an empty name and an
// empty array), but an element takes 64 bytes in memory: 64 MiB for this
// 2 MiB frame, 3.2 GiB for the default 100 MiB socket.request.max.bytes
// (v1.15.0 checked one byte per element). The patched copy grows the array
// with what it parsed, so the decode allocates little.
func TestArrayCountBeyondParsedData(t *testing.T) {
	const n = 1 << 20
	frame := header(0, 3, 1, 0xff, 0xff)                   // Produce v3, null client id
	frame = append(frame, 0xff, 0xff, 0, 1, 0, 0, 3, 0xe8) // null transactional id, acks 1, timeout
	frame = binary.BigEndian.AppendUint32(frame, n)        // topics: n claimed
	frame = append(frame, 0, 0, 0x7f, 0xff, 0xff, 0xff)    // "" then 2^31-1 partitions: fails
	frame = append(frame, make([]byte, 2*n)...)            // room for n smallest topics

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ParseRequest(frame, allVersions)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformedBody) {
		t.Fatalf("ParseRequest: %v, want ErrMalformedBody", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(frame)) {
		t.Fatalf("decoding a %d-byte frame allocated %d bytes: array counts are trusted again", len(frame), alloc)
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzRequestFrame from
// seedFrames when STROM_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("STROM_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set STROM_WRITE_FUZZ_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRequestFrame")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedFrames() {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+strings.ReplaceAll(name, "/", "-")), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestArraysDecodeWhole: arrays decoded by the patched kmsg, which grows them
// as elements are parsed, have exactly the elements that were encoded, on
// both sides of its first allocation (16) and of each doubling.
func TestArraysDecodeWhole(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c"))
	for _, n := range []int{1, 15, 16, 17, 31, 33, 64, 100, 1000} {
		for _, v := range []int16{3, 9} { // classic and flexible encodings
			produce := kmsg.NewPtrProduceRequest()
			for i := range n {
				pt := kmsg.NewProduceRequestTopic()
				pt.Topic = fmt.Sprintf("t%d", i)
				for j := range n % 7 {
					pp := kmsg.NewProduceRequestTopicPartition()
					pp.Partition = int32(j)
					pt.Partitions = append(pt.Partitions, pp)
				}
				produce.Topics = append(produce.Topics, pt)
			}
			req, err := ParseRequest(body(f, produce, v, 1), allVersions)
			if err != nil {
				t.Fatalf("n=%d v%d: %v", n, v, err)
			}
			got := req.Msg.(*kmsg.ProduceRequest).Topics
			if len(got) != n {
				t.Fatalf("n=%d v%d: decoded %d topics", n, v, len(got))
			}
			for i, pt := range got {
				if pt.Topic != fmt.Sprintf("t%d", i) || len(pt.Partitions) != n%7 {
					t.Fatalf("n=%d v%d: topic %d decoded as %q with %d partitions", n, v, i, pt.Topic, len(pt.Partitions))
				}
			}
		}
	}
}
