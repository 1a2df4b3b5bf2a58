package handler

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeLogDirs(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, nil)
	cl := b.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx := admCtx(t)
	admCreate(t, adm, "sized", 2, nil)
	admCreate(t, adm, "other", 1, nil)

	describe := func(s kadm.TopicsSet) kadm.DescribedLogDir {
		t.Helper()
		dirs, err := adm.DescribeBrokerLogDirs(ctx, 0, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(dirs) != 1 {
			t.Fatalf("%d log dirs", len(dirs))
		}
		for _, d := range dirs {
			if d.Err != nil {
				t.Fatal(d.Err)
			}
			return d
		}
		panic("unreachable")
	}
	d := describe(nil)
	abs, _ := filepath.Abs(dir)
	if d.Dir != abs {
		t.Fatalf("dir %q, want %q", d.Dir, abs)
	}
	if d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes {
		t.Fatalf("volume bytes total %d usable %d", d.TotalBytes, d.UsableBytes)
	}
	if len(d.Topics["sized"]) != 2 || len(d.Topics["other"]) != 1 {
		t.Fatalf("topics: %+v", d.Topics)
	}
	before := d.Topics["sized"][0].Size

	var recs []*kgo.Record
	for range 5 {
		recs = append(recs, &kgo.Record{Topic: "sized", Partition: 0, Value: []byte("a value of some length")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		d = describe(nil)
		if d.Topics["sized"][0].Size > before {
			break
		}
		select {
		case <-poll.C:
		case <-ctx.Done():
			t.Fatalf("size of sized-0 still %d after producing", d.Topics["sized"][0].Size)
		}
	}
	if p := d.Topics["sized"][0]; p.OffsetLag != 0 || p.IsFuture {
		t.Fatalf("partition: %+v", p)
	}
	if got, want := d.Topics["sized"][0].Size, mustPartitionSize(t, b, "sized", 0); got != want {
		t.Fatalf("size %d, log says %d", got, want)
	}

	// A requested set describes only what exists of it.
	d = describe(kadm.TopicsSet{"sized": {1: {}, 7: {}}, "missing": {0: {}}})
	if len(d.Topics) != 1 || len(d.Topics["sized"]) != 1 {
		t.Fatalf("requested set: %+v", d.Topics)
	}
	if _, ok := d.Topics["sized"][1]; !ok {
		t.Fatalf("sized-1 missing: %+v", d.Topics)
	}
}

func mustPartitionSize(t *testing.T, b *testBroker, topic string, index int32) int64 {
	t.Helper()
	p, err := b.Cluster.Partition(topic, index)
	if err != nil {
		t.Fatal(err)
	}
	return p.Size()
}

func TestDescribeLogDirsNullAndEmpty(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	admCreate(t, kadm.NewClient(cl), "listed", 1, nil)
	req := kmsg.NewPtrDescribeLogDirsRequest() // null: every partition
	resp := admRaw[*kmsg.DescribeLogDirsResponse](t, cl, req)
	if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 || resp.Dirs[0].Topics[0].Topic != "listed" {
		t.Fatalf("null topic list: %+v", resp.Dirs)
	}
	req.Topics = []kmsg.DescribeLogDirsRequestTopic{} // empty: none
	resp = admRaw[*kmsg.DescribeLogDirsResponse](t, cl, req)
	if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 0 {
		t.Fatalf("empty topic list: %+v", resp.Dirs)
	}
}
