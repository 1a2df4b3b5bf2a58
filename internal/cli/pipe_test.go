package cli

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// pipeLines is 100k lines of arbitrary bytes (never a newline): empty
// lines, carriage returns, tabs, NULs, invalid UTF-8, multi-byte UTF-8,
// and a few lines of hundreds of kilobytes.
func pipeLines(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abcdefghijklmnopqrstuvwxyz0123456789 ,.:;{}\"\t\r\x00\xff\xc3\xa9")
	var b bytes.Buffer
	for i := range n {
		size := rng.IntN(80)
		switch {
		case i%10007 == 0:
			size = 200_000 + rng.IntN(100_000)
		case i%97 == 0:
			size = 0
		}
		for range size {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// TestPipe100k produces 100,000 lines from a pipe and consumes them into
// a pipe, and checks that the bytes come back unchanged.
func TestPipe100k(t *testing.T) {
	const n = 100_000
	in := pipeLines(n)
	onEach(t, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "pipe", "-p", "1")
		r := c.run(t, bytes.NewReader(in), "produce", "pipe")
		if r.code != 0 || r.stderr != "" || r.stdout != "" {
			t.Fatalf("produce: exit %d, stderr %q", r.code, r.stderr)
		}
		t.Logf("%s: produced %d lines (%d bytes) in %s", c.name, n, len(in), r.took)
		r = c.run(t, nil, "consume", "pipe", "--from-beginning", "--exit")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("consume: exit %d, stderr %q", r.code, r.stderr)
		}
		t.Logf("%s: consumed them in %s", c.name, r.took)
		if out := []byte(r.stdout); !bytes.Equal(out, in) {
			i := 0
			for i < min(len(out), len(in)) && out[i] == in[i] {
				i++
			}
			t.Fatalf("output differs from input at byte %d (got %d bytes, want %d; %d lines, want %d)",
				i, len(out), len(in), bytes.Count(out, []byte("\n")), n)
		}
		same(t, "records in the log", fmt.Sprint(endOffset(t, c, "pipe")), fmt.Sprint(n))
	})
}

func endOffset(t *testing.T, c *cluster, topic string) int64 {
	t.Helper()
	ends, err := c.admin(t).ListEndOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset
}

// Many small lines fill batches: no batch may grow past a default broker's
// message.max.bytes (1048588), or the broker answers MESSAGE_TOO_LARGE for
// records that are each tiny. (The CLI once sized batches by the longest
// line allowed, 1 MiB + 4 KiB.)
func TestProduceFullBatchesFitDefaultBroker(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "full-batches", "--partitions", "1")
		line := bytes.Repeat([]byte("x"), 1000)
		var in bytes.Buffer
		for i := 0; i < 5000; i++ { // ~5 MB: several full batches
			in.Write(line)
			in.WriteByte('\n')
		}
		c.ok(t, &in, "produce", "full-batches", "--linger", "1s")
		out := c.ok(t, nil, "consume", "full-batches", "--from-beginning", "--exit", "-f", "%o\n")
		if n := strings.Count(out, "\n"); n != 5000 {
			t.Fatalf("read back %d records, want 5000", n)
		}
	})
}
