package cluster

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestRestartWithALaggingMetadataView: a cluster node restarts with a
// metadata view that lacks the creation of a topic it holds a replica of
// (its commit index on disk lagged its log when it was killed). Before,
// start set the directory aside as claimed by no topic; the replica came
// back empty and its raft group refused it as one that lost acknowledged
// entries, so it never rejoined the ISR. Now the directory stays in place,
// the partition opens with its records when the record is applied, and a
// directory no topic claims is set aside only after a barrier committed.
func TestRestartWithALaggingMetadataView(t *testing.T) {
	mem := memfs.New()
	first := &directProposer{}
	first.store = metadata.NewReplicatedStore(first, time.Minute)
	openWith := func(p *directProposer) *Cluster {
		t.Helper()
		c, err := Open(Config{DataDir: "/data", FS: mem, Logger: slog.New(slog.DiscardHandler), Quorum: leaderQuorum{},
			OpenMetadata: func(string) (*metadata.Store, error) { return p.store, nil }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := openWith(first)
	if err := c.Register(metadata.BrokerInfo{ID: c.NodeID(), Host: "localhost", Port: 9092, Incarnation: "a"}); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"kept", "orphan"} {
		if _, err := c.CreateTopic(topic, 1, nil, false); err != nil {
			t.Fatal(err)
		}
		appendValue(t, c, topic, 0, "a", -1)
		appendValue(t, c, topic, 0, "b", -1)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// The second life's view has the registration only; the creation of
	// "kept" arrives later, that of "orphan" never (a directory no topic
	// claims, as after a restore of a stranger's files).
	var creations = map[string][]byte{}
	second := &directProposer{hold: []byte(`"barrier"`), waiting: make(chan struct{}), release: make(chan struct{})}
	second.store = metadata.NewReplicatedStore(second, time.Minute)
	for _, payload := range first.log {
		switch {
		case bytes.Contains(payload, []byte(`"kept"`)):
			creations["kept"] = payload
		case bytes.Contains(payload, []byte(`"orphan"`)):
		default:
			second.apply(payload)
		}
	}
	if creations["kept"] == nil {
		t.Fatalf("no creation record for kept among %d records", len(first.log))
	}
	c = openWith(second)
	defer c.Close()
	strays := func() []string {
		names, _ := mem.List("/data")
		var out []string
		for _, n := range names {
			if strings.HasSuffix(n, "-stray") {
				out = append(out, n)
			}
		}
		return out
	}
	for _, d := range []string{"/data/kept-0", "/data/orphan-0"} {
		if _, err := mem.Stat(d); err != nil {
			t.Fatalf("%s moved before the view was known current: %v (strays %v)", d, err, strays())
		}
	}
	if _, err := c.Partition("kept", 0); err == nil {
		t.Fatal("kept-0 open before its topic is in the view")
	}
	select {
	case <-second.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("no barrier proposed for the directories no topic claims")
	}

	second.apply(creations["kept"])
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := c.Partition("kept", 0)
		if err == nil {
			if hw := p.HighWatermark(); hw != 2 {
				t.Fatalf("kept-0 reopened with high watermark %d, want its 2 records", hw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kept-0 not opened once its topic was applied: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // polling the reconciler with a deadline
	}

	close(second.release)
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := mem.Stat("/data/orphan-0")
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan-0 still in place after the barrier: %v", err)
		}
		time.Sleep(5 * time.Millisecond) // polling the sweep with a deadline
	}
	if s := strays(); len(s) != 1 || !strings.HasPrefix(s[0], "orphan-0.") {
		t.Fatalf("set aside: %v, want orphan-0 only", s)
	}
	if _, err := mem.Stat("/data/kept-0"); err != nil {
		t.Fatal(err)
	}
}
