package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// placeholders counts the file placeholders still registered.
func placeholders() int {
	n := 0
	fileRecords.Range(func(any, any) bool { n++; return true })
	return n
}

// withFileRecords writes some of resp's record sets (large and small) into
// a file, puts placeholders for them in resp, and returns the response as
// it must arrive (records in place) and the number of releases so far.
func withFileRecords(t *testing.T, r *rand.Rand, resp *kmsg.FetchResponse) (*os.File, *atomic.Int64, int) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	released := &atomic.Int64{}
	n := 0
	var off int64 = 100 // a section never starts at 0 of its file
	if _, err := f.WriteAt(make([]byte, off), 0); err != nil {
		t.Fatal(err)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			p := &resp.Topics[i].Partitions[j]
			if len(p.RecordBatches) == 0 || r.IntN(2) == 0 {
				continue
			}
			if _, err := f.WriteAt(p.RecordBatches, off); err != nil {
				t.Fatal(err)
			}
			size := len(p.RecordBatches)
			p.RecordBatches = RecordsFromFile(FileRecords{File: f, Off: off, Len: size, Release: func() { released.Add(1) }})
			off += int64(size + r.IntN(50))
			n++
		}
	}
	return f, released, n
}

// TestFileRecordsOverTheWire: a fetch response whose record sets are file
// ranges arrives byte for byte as kmsg's plain encoding of the same
// response with the records in memory, at every version, sent with
// sendfile on TCP and copied on any other connection (TLS, here a pipe);
// every file range is released once, after the write.
func TestFileRecordsOverTheWire(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	srv := New(Config{Logger: discardLogger()}, &fakeHandler{})
	for _, kind := range []string{"tcp", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			var s splicer
			files := 0
			for version := int16(0); version <= kmsg.NewPtrFetchResponse().MaxVersion(); version++ {
				want := randomFetchResponse(r)
				want.SetVersion(version)
				wantFrame := appendResponse(nil, 9, want)
				resp := randomFetchResponse(rand.New(rand.NewPCG(0, 0))) // replaced below
				*resp = *want
				resp.Topics = nil
				for _, rt := range want.Topics {
					rt.Partitions = append([]kmsg.FetchResponseTopicPartition(nil), rt.Partitions...)
					resp.Topics = append(resp.Topics, rt)
				}
				_, released, n := withFileRecords(t, r, resp)
				files += n
				var client, server net.Conn
				if kind == "tcp" {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					client, err = net.Dial("tcp", ln.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					if server, err = ln.Accept(); err != nil {
						t.Fatal(err)
					}
					ln.Close()
				} else {
					client, server = net.Pipe()
				}
				c := newConn(srv, server, "127.0.0.1", &Listener{Name: "PLAINTEXT"})
				got := make(chan []byte, 1)
				go func() {
					b, _ := io.ReadAll(client)
					got <- b
				}()
				if bufs := s.encode(9, resp); bufs == nil {
					if n > 0 {
						t.Fatalf("v%d: file records not spliced", version)
					}
					server.Write(appendResponse(nil, 9, resp))
				} else if err := s.write(c); err != nil {
					t.Fatalf("v%d: write: %v", version, err)
				}
				s.release()
				server.Close()
				if frame := <-got; !bytes.Equal(frame, wantFrame) {
					t.Fatalf("v%d: %d bytes arrived, want kmsg's %d", version, len(frame), len(wantFrame))
				}
				client.Close()
				if got := released.Load(); got != int64(n) {
					t.Fatalf("v%d: %d of %d file ranges released", version, got, n)
				}
			}
			if files == 0 {
				t.Fatal("no file ranges sent")
			}
			if n := placeholders(); n != 0 {
				t.Fatalf("%d placeholders left registered", n)
			}
		})
	}
}

// TestFileRecordsReleasedOnce: a response dropped before its write
// releases its file ranges, once, however often it is released.
func TestFileRecordsReleasedOnce(t *testing.T) {
	resp := randomFetchResponse(rand.New(rand.NewPCG(7, 8)))
	_, released, n := withFileRecords(t, rand.New(rand.NewPCG(9, 10)), resp)
	if n == 0 {
		t.Fatal("no file ranges")
	}
	releaseResponse(resp)
	releaseResponse(resp)
	if got := released.Load(); got != int64(n) {
		t.Fatalf("%d releases for %d file ranges", got, n)
	}
	if n := placeholders(); n != 0 {
		t.Fatalf("%d placeholders left registered", n)
	}
}

// TestFileRecordsShortFile: a file cut below its range since the read
// fails the write (the frame cannot be completed: the connection closes)
// rather than sending a frame shorter than its size says.
func TestFileRecordsShortFile(t *testing.T) {
	for _, kind := range []string{"tcp", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.Write(make([]byte, 4096))
			fr := &FileRecords{File: f, Off: 1000, Len: 4000}
			var client, server net.Conn
			if kind == "tcp" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
					t.Fatal(err)
				}
				if server, err = ln.Accept(); err != nil {
					t.Fatal(err)
				}
			} else {
				client, server = net.Pipe()
			}
			defer client.Close()
			defer server.Close()
			go io.Copy(io.Discard, client)
			c := newConn(New(Config{Logger: discardLogger()}, &fakeHandler{}), server, "127.0.0.1", &Listener{Name: "PLAINTEXT"})
			if err := c.writeFile(fr); !errors.Is(err, errShortFile) {
				t.Fatalf("write of a range past the file's end: %v, want errShortFile", err)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
