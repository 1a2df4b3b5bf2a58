package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// admCtx bounds every wait of an admin test.
func admCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// admRaw sends req to broker 0 itself (no client-side sharding).
func admRaw[T kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) T {
	t.Helper()
	resp, err := cl.Broker(0).Request(admCtx(t), req)
	if err != nil {
		t.Fatalf("%T: %v", req, err)
	}
	return resp.(T)
}

// admMetadata returns what Metadata says of one topic, without creating it.
func admMetadata(t *testing.T, cl *kgo.Client, topic string) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp := admRaw[*kmsg.MetadataResponse](t, cl, req)
	if len(resp.Topics) != 1 {
		t.Fatalf("metadata of %q: %d topics", topic, len(resp.Topics))
	}
	return resp.Topics[0]
}

func admCreate(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) kadm.CreateTopicResponse {
	t.Helper()
	resps, err := adm.CreateTopics(admCtx(t), partitions, -1, configs, topic)
	if err != nil {
		t.Fatal(err)
	}
	r := resps[topic]
	if r.Err != nil {
		t.Fatalf("create %s: %v: %s", topic, r.Err, r.ErrMessage)
	}
	return r
}

func TestCreateTopics(t *testing.T) {
	b := startBroker(t, "", map[string]string{"num.partitions": "2"})
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	ctx := admCtx(t)

	r := admCreate(t, adm, "made", 3, map[string]*string{"retention.ms": kadm.StringPtr("1000")})
	if r.NumPartitions != 3 || r.ReplicationFactor != 1 || r.ID == (kadm.TopicID{}) {
		t.Fatalf("created: %+v", r)
	}
	if c := r.Configs["retention.ms"]; c.MaybeValue() != "1000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c := r.Configs["segment.bytes"]; c.MaybeValue() != "1073741824" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("segment.bytes: %+v", c)
	}
	if mt := admMetadata(t, cl, "made"); mt.ErrorCode != 0 || len(mt.Partitions) != 3 || mt.TopicID != r.ID {
		t.Fatalf("metadata: %+v", mt)
	}

	// -1 partitions is num.partitions.
	if r := admCreate(t, adm, "defaulted", -1, nil); r.NumPartitions != 2 {
		t.Fatalf("default partitions: %d", r.NumPartitions)
	}

	// ValidateOnly answers as a creation would, and creates nothing.
	vr, err := adm.ValidateCreateTopics(ctx, 4, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "dry")
	if err != nil {
		t.Fatal(err)
	}
	if d := vr["dry"]; d.Err != nil || d.NumPartitions != 4 || d.ID != (kadm.TopicID{}) {
		t.Fatalf("validate only: %+v", d)
	}
	if _, ok := b.Cluster.Topic("dry"); ok {
		t.Fatal("validate only created the topic")
	}

	for _, tc := range []struct {
		name    string
		topic   string
		rf      int16
		configs map[string]*string
		want    error
		msg     string
	}{
		{"exists", "made", 1, nil, kerr.TopicAlreadyExists, "already exists"},
		{"rf 3", "rf3", 3, nil, kerr.InvalidReplicationFactor, "larger than available brokers: 1"},
		{"rf 0", "rf0", 0, nil, kerr.InvalidReplicationFactor, "larger than 0"},
		{"bad value", "badval", 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, kerr.InvalidConfig, "retention.ms"},
		{"unknown config", "unk", 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, kerr.InvalidConfig, "no.such.config"},
		{"null value", "nullval", 1, map[string]*string{"retention.ms": nil}, kerr.InvalidConfig, "null"},
		{"bad name", "bad/name", 1, nil, kerr.InvalidTopicException, "bad/name"},
		{"collision", "ma_de", 1, nil, kerr.InvalidTopicException, "collides"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.topic == "ma_de" {
				admCreate(t, adm, "ma.de", 1, nil)
			}
			resps, err := adm.CreateTopics(ctx, 1, tc.rf, tc.configs, tc.topic)
			if err != nil {
				t.Fatal(err)
			}
			r := resps[tc.topic]
			if !errors.Is(r.Err, tc.want) || !strings.Contains(r.ErrMessage, tc.msg) {
				t.Fatalf("got %v %q, want %v with %q", r.Err, r.ErrMessage, tc.want, tc.msg)
			}
			if tc.want != kerr.TopicAlreadyExists {
				if _, ok := b.Cluster.Topic(tc.topic); ok {
					t.Fatal("topic created anyway")
				}
			}
		})
	}
}

func TestCreateTopicsRaw(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	topic := func(name string, partitions int32, rf int16, assign ...[]int32) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		for i, replicas := range assign {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), replicas
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		return rt
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Topics = []kmsg.CreateTopicsRequestTopic{
		topic("twice", 1, 1),
		topic("assigned", -1, -1, []int32{0}, []int32{0}),
		topic("two-replicas", -1, -1, []int32{0, 1}),
		topic("other-broker", -1, -1, []int32{5}),
		topic("both", 2, -1, []int32{0}),
		topic("twice", 1, 1),
		topic("no-partitions", 0, 1),
	}
	gap := topic("gap", -1, -1, []int32{0}, []int32{0})
	gap.ReplicaAssignment[1].Partition = 2
	req.Topics = append(req.Topics, gap)
	resp := admRaw[*kmsg.CreateTopicsResponse](t, cl, req)
	want := map[string]int16{
		"twice":         kerr.InvalidRequest.Code,
		"assigned":      0,
		"two-replicas":  kerr.InvalidReplicaAssignment.Code,
		"other-broker":  kerr.InvalidReplicaAssignment.Code,
		"both":          kerr.InvalidRequest.Code,
		"no-partitions": kerr.InvalidPartitions.Code,
		"gap":           kerr.InvalidReplicaAssignment.Code,
	}
	if len(resp.Topics) != len(want) {
		t.Fatalf("%d answers for %d distinct topics: %+v", len(resp.Topics), len(want), resp.Topics)
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] {
			t.Errorf("%s: code %d (%v), want %d", st.Topic, st.ErrorCode, st.ErrorMessage, want[st.Topic])
		}
		if st.ErrorCode != 0 && st.ErrorMessage == nil {
			t.Errorf("%s: no error message", st.Topic)
		}
	}
	for _, name := range []string{"twice", "two-replicas", "both", "gap"} {
		if _, ok := b.Cluster.Topic(name); ok {
			t.Errorf("%s created", name)
		}
	}
	if tp, ok := b.Cluster.Topic("assigned"); !ok || tp.Partitions != 2 {
		t.Fatalf("assigned: %+v %v", tp, ok)
	}
}

// One CreateTopics request writes the metadata once whatever its number of
// topics, and a topic whose partitions cannot all be created (EMFILE) is
// answered with an error and not created at all, while the others are;
// new connections are still served, and the broker restarts on the data.
func TestCreateTopicsOneMetadataWriteAndAtomic(t *testing.T) {
	mem := memfs.New()
	var metaWrites atomic.Int64
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpRename && strings.HasSuffix(name, "__strom_metadata.tmp") {
			metaWrites.Add(1)
		}
		if op == errorfs.OpCreate && strings.Contains(name, "/doomed-3/") {
			return syscall.EMFILE
		}
		return nil
	}))
	b := startBrokerFS(t, "/data", "127.0.0.1:0", nil, fsys)
	cl := b.client(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	for i := range 200 {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("many-%03d", i), 1, 1
		req.Topics = append(req.Topics, rt)
	}
	doomed := kmsg.NewCreateTopicsRequestTopic()
	doomed.Topic, doomed.NumPartitions, doomed.ReplicationFactor = "doomed", 6, 1
	req.Topics = append(req.Topics, doomed)
	before := metaWrites.Load()
	resp := admRaw[*kmsg.CreateTopicsResponse](t, cl, req)
	if n := metaWrites.Load() - before; n != 1 {
		t.Fatalf("one CreateTopics of %d topics wrote the metadata %d times, want 1", len(req.Topics), n)
	}
	for _, st := range resp.Topics {
		if (st.ErrorCode != 0) != (st.Topic == "doomed") {
			t.Fatalf("%s: code %d %v", st.Topic, st.ErrorCode, st.ErrorMessage)
		}
	}
	if _, ok := b.Cluster.Topic("doomed"); ok {
		t.Fatal("half-created topic in the metadata")
	}
	if _, err := mem.Stat("/data/doomed-0"); err == nil {
		t.Fatal("directory of the failed topic left")
	}
	// A new connection is served.
	if m := admMetadata(t, b.client(t), "many-199"); m.ErrorCode != 0 || len(m.Partitions) != 1 {
		t.Fatalf("metadata after the failed creation: %+v", m)
	}
	b.Stop(t)
	b = startBrokerFS(t, "/data", "127.0.0.1:0", nil, mem)
	if got := len(b.Cluster.Topics()); got != 200 {
		t.Fatalf("%d topics after restart, want 200", got)
	}
}

// Issue 15 item 12: message.format.version (deprecated in Kafka 3.x, which
// ignores it from inter.broker.protocol.version 3.0 on) is accepted on
// CreateTopics and AlterConfigs, shown by DescribeConfigs as Kafka 3.x
// shows it, and has no effect on what is stored (librdkafka test 0092).
func TestMessageFormatVersionIgnored(t *testing.T) {
	b := startBroker(t, "", nil)
	adm := b.admin(t)
	ctx := admCtx(t)
	if r := admCreate(t, adm, "mfv", 1, map[string]*string{"message.format.version": kadm.StringPtr("0.10.0")}); r.Err != nil {
		t.Fatalf("create with message.format.version: %v %s", r.Err, r.ErrMessage)
	}
	checkConfig(t, admConfigs(t, adm, "mfv"), "message.format.version", "0.10.0", srcTopic,
		synonymWant{"message.format.version", "0.10.0", srcTopic}, synonymWant{"log.message.format.version", "3.0-IV1", srcDefault})
	admCreate(t, adm, "plain", 1, nil)
	checkConfig(t, admConfigs(t, adm, "plain"), "message.format.version", "3.0-IV1", srcDefault)

	for _, v := range []string{"2.8", "3.0-IV1", "0.10.2"} {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.format.version", Value: kadm.StringPtr(v)}}, "plain")
		if err != nil || rs[0].Err != nil {
			t.Fatalf("alter to %s: %v %+v", v, err, rs)
		}
		checkConfig(t, admConfigs(t, adm, "plain"), "message.format.version", v, srcTopic)
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.format.version", Value: kadm.StringPtr("banana")}}, "plain")
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("a value that is no version: %v %+v", err, rs)
	}

	// Its broker synonym is static, as Kafka 3.x keeps it.
	brs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.message.format.version", Value: kadm.StringPtr("2.8")}})
	if err != nil || !errors.Is(brs[0].Err, kerr.InvalidRequest) || !strings.Contains(brs[0].ErrMessage, "[log.message.format.version]") {
		t.Fatalf("log.message.format.version on the broker: %v %+v", err, brs)
	}

	// Ignored: a v2 batch is stored as it came, whatever the topic says.
	p, err := b.Cluster.Partition("mfv", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(admBatch(t, 3, 10), partition.AppendRules{}); err != nil {
		t.Fatalf("append to a topic with message.format.version 0.10.0: %v", err)
	}
}
