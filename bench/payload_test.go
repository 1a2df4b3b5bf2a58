package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/klauspost/compress/s2"
)

// TestValuePools checks issue 24's payloads: every value of a pool is its
// own (a batch of them is not a batch of copies), of the asked size, and
// the JSON one is valid JSON that compresses like text while the random
// one does not compress even across values.
func TestValuePools(t *testing.T) {
	for _, p := range []Payload{RandomPayload, JSONPayload} {
		vs := values(p, 1024)
		if len(vs) != poolValues {
			t.Fatalf("%v: %d values, want %d", p, len(vs), poolValues)
		}
		seen := make(map[string]bool, len(vs))
		var batch []byte
		for i, v := range vs {
			if len(v) < 1024 || len(v) > 1024+200 {
				t.Fatalf("%v: value %d is %d bytes, want about 1024", p, i, len(v))
			}
			if seen[string(v)] {
				t.Fatalf("%v: value %d repeats an earlier one", p, i)
			}
			seen[string(v)] = true
			if p == JSONPayload && !json.Valid(v) {
				t.Fatalf("value %d is not JSON: %s", i, v)
			}
			if i < 256 {
				batch = append(batch, v...)
			}
		}
		// A 256-record batch, compressed as snappy does it (s2's snappy
		// mode).
		ratio := float64(len(batch)) / float64(len(s2.EncodeSnappy(nil, batch)))
		t.Logf("%v: a 256-record batch compresses %.2fx with snappy", p, ratio)
		switch {
		case p == RandomPayload && ratio > 1.01:
			t.Errorf("random values compress %.2fx within a batch: they repeat", ratio)
		case p == JSONPayload && (ratio < 2 || ratio > 15):
			t.Errorf("JSON reports compress %.2fx, want the 2-15x of real telemetry", ratio)
		}
		if &values(p, 1024)[0][0] != &vs[0][0] {
			t.Errorf("%v: the pool was generated twice", p)
		}
	}
	if bytes.Equal(values(JSONPayload, 100)[0], values(JSONPayload, 1024)[0]) {
		t.Error("pools of different sizes are the same")
	}
}

// TestParallelSync checks the acks=all limit's measurement: every byte is
// written and covered by a sync, on every file, and the files are gone.
func TestParallelSync(t *testing.T) {
	dir := t.TempDir()
	p, err := measureParallelSync(dir, 4, 64<<10, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if p.Bytes != 4<<20 {
		t.Errorf("%d bytes synced, want %d", p.Bytes, 4<<20)
	}
	if p.Syncs < 4 || p.Syncs > 64 {
		t.Errorf("%d syncs for 64 appends over 4 files: want at least one per file and at most one per append", p.Syncs)
	}
	if p.BytesPerSec() <= 0 {
		t.Errorf("bandwidth %v", p.BytesPerSec())
	}
	left, err := os.ReadDir(dir)
	if err != nil || len(left) != 0 {
		t.Errorf("left in the directory: %v (%v)", left, err)
	}
}
