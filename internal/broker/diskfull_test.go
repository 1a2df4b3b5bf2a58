package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
	"github.com/stromhq/strom/internal/testutil"
)

// disk is the data directory's filesystem as the tests break it: full
// (every write stores a few bytes, then fails with ENOSPC, as a write that
// reaches the end of the free blocks does) or with failing fsyncs of one
// partition's segments.
type disk struct {
	full      atomic.Bool
	failSyncs atomic.Value // string: a path substring whose .log syncs fail
}

func (d *disk) MaybeError(op errorfs.Op, name string) error {
	if op == errorfs.OpWrite && d.full.Load() {
		return &errorfs.PartialWrite{N: 9}
	}
	if sub, _ := d.failSyncs.Load().(string); sub != "" && op == errorfs.OpSync && strings.Contains(name, sub) && strings.HasSuffix(name, ".log") {
		return syscall.EIO
	}
	return nil
}

func startOn(t *testing.T, fsys vfs.FS, logs io.Writer) *Broker {
	t.Helper()
	b, err := Start(Config{DataDir: "/data", FS: fsys, KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return b
}

// produceRaw sends one batch of one record to topic-0 and returns the
// partition's error code, as a producer sees it (no client retries).
func produceRaw(t *testing.T, cl *kgo.Client, topic, value string) int16 {
	t.Helper()
	b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Value: []byte(value)}})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID(t, cl, topic)
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// topicID looks a topic's id up (Produce v13 names topics by id).
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return td[topic].ID
}

// readAllValues reads topic-0 from its start to its end offset.
func readAllValues(t *testing.T, addr, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var out []string
	for next := int64(0); next < end.Offset; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records up to offset %d of %d", len(out), next, end.Offset)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			next = r.Offset + 1
		})
	}
	return out
}

func httpGet(t *testing.T, b *Broker, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + b.HTTPAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitHealth polls /healthz until its first line is want.
func waitHealth(t *testing.T, b *Broker, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := httpGet(t, b, "/healthz")
		if strings.HasPrefix(body, want+"\n") {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz still says %q, want %q", body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricValue(t *testing.T, b *Broker, series string) float64 {
	t.Helper()
	_, body := httpGet(t, b, "/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in the metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDiskFull fills the data directory's disk under a broker: producers
// get KAFKA_STORAGE_ERROR (retriable, where they used to get
// UNKNOWN_SERVER_ERROR), consumers keep reading, /healthz and the metrics
// say degraded, one log line says so; when space returns the producers'
// retries go through and nothing acknowledged is lost or doubled. Then the
// broker dies (kill -9) with the disk full: it starts again, read-only
// until space returns.
func TestDiskFull(t *testing.T) {
	mem := memfs.New()
	d := &disk{}
	var logs testutil.SyncBuffer
	b := startOn(t, errorfs.Wrap(mem, d), &logs)
	addr := b.KafkaAddr().String()
	ctx := context.Background()
	// franz-go refreshes metadata before retrying a KAFKA_STORAGE_ERROR,
	// at most every MetadataMinAge (5 s by default): shortened here.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("full"),
		kgo.ProducerLinger(0), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Small segments and an index entry per batch: a full disk then also
	// hits rolls and index writes, not only appends.
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{
		"segment.bytes": kadm.StringPtr("1024"), "index.interval.bytes": kadm.StringPtr("1")}, "full"); err != nil {
		t.Fatal(err)
	}
	var acked []string
	for i := 0; i < 50; i++ {
		v := fmt.Sprint("before-", i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, v)
	}

	d.full.Store(true)
	for i := 0; i < 3; i++ {
		if code := produceRaw(t, cl, "full", "refused"); code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
		}
	}
	// A client producing meanwhile retries until there is room.
	pending := make(chan error, 1)
	go func() {
		pending <- cl.ProduceSync(ctx, &kgo.Record{Value: []byte("during")}).FirstErr()
	}()
	if got := readAllValues(t, addr, "full"); strings.Join(got, ",") != strings.Join(acked, ",") {
		t.Fatalf("reads on a full disk: %d records, want %d", len(got), len(acked))
	}
	body := waitHealth(t, b, "degraded")
	if !strings.Contains(body, "full-0 degraded enospc:") {
		t.Fatalf("healthz does not name the partition:\n%s", body)
	}
	if code, _ := httpGet(t, b, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz on a full disk: %d, want 200 (degraded, not failed)", code)
	}
	if v := metricValue(t, b, `strom_partitions{state="degraded"}`); v < 1 {
		t.Fatalf("degraded partitions %v", v)
	}
	if v := metricValue(t, b, `strom_storage_errors_total{kind="enospc"}`); v < 3 {
		t.Fatalf("enospc errors %v, want at least 3", v)
	}
	if n := strings.Count(logs.String(), `partition storage degraded: writes fail and are retried, reads are served" partition=full-0`); n != 1 {
		t.Fatalf("%d degraded lines for full-0, want 1:\n%s", n, logs.String())
	}

	d.full.Store(false)
	select {
	case err := <-pending:
		if err != nil {
			t.Fatalf("the retried produce failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the retried produce did not go through after space returned")
	}
	acked = append(acked, "during")
	if code := produceRaw(t, cl, "full", "after"); code != 0 {
		t.Fatalf("produce after space returned: %v", kerr.ErrorForCode(code))
	}
	acked = append(acked, "after")
	waitHealth(t, b, "ok")
	if got := readAllValues(t, addr, "full"); strings.Join(got, ",") != strings.Join(acked, ",") {
		t.Fatalf("after space returned: got %v, want %v", got, acked)
	}
	if v := metricValue(t, b, `strom_partitions{state="ok"}`); v < 1 {
		t.Fatalf("ok partitions %v", v)
	}

	// kill -9 on a full disk: the process dies with everything it wrote
	// (Snapshot), and the next start finds no free byte.
	d.full.Store(true)
	dead := mem.Snapshot()
	cl.Close()
	b.Shutdown(context.Background()) // fails on the full disk; its writes go to mem, not dead

	d2 := &disk{}
	d2.full.Store(true)
	var logs2 testutil.SyncBuffer
	b2 := startOn(t, errorfs.Wrap(dead, d2), &logs2)
	defer b2.Shutdown(context.Background())
	addr = b2.KafkaAddr().String()
	body = waitHealth(t, b2, "degraded") // recovery could not write the indexes
	if !strings.Contains(body, "full-0 degraded enospc:") {
		t.Fatalf("healthz after a start on a full disk:\n%s", body)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if code := produceRaw(t, cl2, "full", "refused"); code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce after a start on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if got := readAllValues(t, addr, "full"); strings.Join(got, ",") != strings.Join(acked, ",") {
		t.Fatalf("reads after a start on a full disk: got %v, want %v", got, acked)
	}
	d2.full.Store(false)
	if code := produceRaw(t, cl2, "full", "restarted"); code != 0 {
		t.Fatalf("produce once space returned: %v", kerr.ErrorForCode(code))
	}
	acked = append(acked, "restarted")
	waitHealth(t, b2, "ok")
	if got := readAllValues(t, addr, "full"); strings.Join(got, ",") != strings.Join(acked, ",") {
		t.Fatalf("after the restart: got %v, want %v", got, acked)
	}
}

// TestFailedPartitionIsVisible: a partition whose segment fsync failed
// takes no writes until a restart; /healthz answers 503 naming it, the
// metrics count it, and Metadata lists this broker in its offline replicas
// with KAFKA_STORAGE_ERROR, as Kafka does for a replica on a failed log
// dir. Before, none of this showed: /healthz said ok.
func TestFailedPartitionIsVisible(t *testing.T) {
	d := &disk{}
	var logs testutil.SyncBuffer
	b := startOn(t, errorfs.Wrap(memfs.New(), d), &logs)
	defer b.Shutdown(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "broken"); err != nil {
		t.Fatal(err)
	}
	d.failSyncs.Store("broken-1/")
	if code := produceRaw(t, cl, "broken", "ok"); code != 0 {
		t.Fatalf("produce to the healthy partition: %v", kerr.ErrorForCode(code))
	}
	req := kmsg.NewPtrProduceRequest() // to partition 1, whose fsync fails
	req.Acks = -1
	req.TimeoutMillis = 10_000
	batch, _ := record.AppendBatch(nil, record.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []record.Record{{Value: []byte("x")}})
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = "broken", topicID(t, cl, "broken")
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 1, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce with a failing fsync: %v", kerr.ErrorForCode(code))
	}
	body := waitHealth(t, b, "failed")
	if code, _ := httpGet(t, b, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz with a failed partition: %d, want 503", code)
	}
	if !strings.Contains(body, "broken-1 failed eio:") {
		t.Fatalf("healthz does not name the failed partition:\n%s", body)
	}
	// Another Host (a DNS-rebinding page, or a probe by a name the
	// broker was not given) gets the state, not the partitions.
	if code, body := get(t, b, "/healthz", "evil.example"); code != http.StatusServiceUnavailable || body != "failed\n" {
		t.Fatalf("healthz with Host evil.example: %d %q, want 503 \"failed\" alone", code, body)
	}
	if v := metricValue(t, b, `strom_partitions{state="failed"}`); v != 1 {
		t.Fatalf("failed partitions %v, want 1", v)
	}
	if n := strings.Count(logs.String(), "partition storage failed"); n != 1 {
		t.Fatalf("%d failed lines, want 1:\n%s", n, logs.String())
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("broken")
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	node := mresp.Brokers[0].NodeID
	for _, p := range mresp.Topics[0].Partitions {
		failed := p.Partition == 1
		if failed != (p.ErrorCode == kerr.KafkaStorageError.Code) || failed != (len(p.OfflineReplicas) == 1 && p.OfflineReplicas[0] == node) {
			t.Fatalf("metadata of partition %d: error %v, offline replicas %v", p.Partition, kerr.ErrorForCode(p.ErrorCode), p.OfflineReplicas)
		}
	}
	// The console, a Kafka client, shows what Metadata says.
	code, page := httpGet(t, b, "/api/v1/topics/broken")
	var td struct {
		Partitions []struct {
			Partition       int32   `json:"partition"`
			OfflineReplicas []int32 `json:"offline_replicas"`
			Error           string  `json:"error"`
		} `json:"partition_details"`
	}
	if err := json.Unmarshal([]byte(page), &td); code != http.StatusOK || err != nil || len(td.Partitions) != 2 {
		t.Fatalf("console topic page: %d %v\n%s", code, err, page)
	}
	for _, p := range td.Partitions {
		failed := p.Partition == 1
		if failed != (len(p.OfflineReplicas) == 1) || failed != strings.Contains(p.Error, "KAFKA_STORAGE_ERROR") {
			t.Fatalf("console partition %d: offline %v, error %q", p.Partition, p.OfflineReplicas, p.Error)
		}
	}
}
