package handler

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
)

// admAlterLegacy sends one legacy AlterConfigs for a topic.
func admAlterLegacy(t *testing.T, cl *kgo.Client, validateOnly bool, typ kmsg.ConfigResourceType, name string, kv ...string) kmsg.AlterConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	for i := 0; i+1 < len(kv); i += 2 {
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = kv[i], kmsg.StringPtr(kv[i+1])
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	resp := admRaw[*kmsg.AlterConfigsResponse](t, cl, req)
	if len(resp.Resources) != 1 {
		t.Fatalf("%d answers", len(resp.Resources))
	}
	return resp.Resources[0]
}

// admBatch is one uncompressed batch of n records of size bytes each.
func admBatch(t *testing.T, n, size int) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i].OffsetDelta = int32(i)
		recs[i].Value = make([]byte, size)
	}
	b, err := record.AppendBatch(nil, record.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAlterConfigsLegacy(t *testing.T) {
	dir := t.TempDir()
	props := map[string]string{"log.retention.ms": "1000000"}
	b := startBroker(t, dir, props)
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	admCreate(t, adm, "legacy", 1, map[string]*string{"retention.ms": kadm.StringPtr("5000"), "segment.bytes": kadm.StringPtr("100000")})

	// The request's set replaces every override.
	if r := admAlterLegacy(t, cl, false, kmsg.ConfigResourceTypeTopic, "legacy", "max.message.bytes", "3000"); r.ErrorCode != 0 {
		t.Fatalf("alter: %d %v", r.ErrorCode, r.ErrorMessage)
	}
	check := func(cs map[string]kadm.Config) {
		t.Helper()
		checkConfig(t, cs, "max.message.bytes", "3000", srcTopic)
		checkConfig(t, cs, "retention.ms", "1000000", srcStatic)
		checkConfig(t, cs, "segment.bytes", "1073741824", srcDefault)
	}
	check(admConfigs(t, adm, "legacy"))
	// ... and applies to the open log at once.
	p, err := b.Cluster.Partition("legacy", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(admBatch(t, 1, 5000), partition.AppendRules{}); !errors.Is(err, partition.ErrBatchTooLarge) {
		t.Fatalf("append above max.message.bytes: %v", err)
	}

	// Refusals change nothing.
	for _, tc := range []struct {
		name     string
		validate bool
		typ      kmsg.ConfigResourceType
		resource string
		kv       []string
		code     int16
		msg      string
	}{
		{"validate only", true, kmsg.ConfigResourceTypeTopic, "legacy", []string{"retention.ms", "1"}, 0, ""},
		{"bad value", false, kmsg.ConfigResourceTypeTopic, "legacy", []string{"retention.ms", "x"}, kerr.InvalidConfig.Code, "retention.ms"},
		{"bad value validate only", true, kmsg.ConfigResourceTypeTopic, "legacy", []string{"retention.ms", "x"}, kerr.InvalidConfig.Code, "retention.ms"},
		{"unknown config", false, kmsg.ConfigResourceTypeTopic, "legacy", []string{"nope", "1"}, kerr.InvalidConfig.Code, "nope"},
		{"twice", false, kmsg.ConfigResourceTypeTopic, "legacy", []string{"retention.ms", "1", "retention.ms", "2"}, kerr.InvalidRequest.Code, "more than once"},
		{"unknown topic", false, kmsg.ConfigResourceTypeTopic, "nowhere", []string{"retention.ms", "1"}, kerr.UnknownTopicOrPartition.Code, "nowhere"},
		{"static broker config", false, kmsg.ConfigResourceTypeBroker, "0", []string{"log.retention.ms", "1", "num.partitions", "2", "log.retention.hours", "1"}, kerr.InvalidRequest.Code,
			"Cannot update these configs dynamically: [log.retention.hours, num.partitions]"},
		{"static default broker config", false, kmsg.ConfigResourceTypeBroker, "", []string{"auto.create.topics.enable", "false"}, kerr.InvalidRequest.Code,
			"Cannot update these configs dynamically: [auto.create.topics.enable]"},
		{"broker config Strom lacks", false, kmsg.ConfigResourceTypeBroker, "0", []string{"log.cleaner.io.buffer.load.factor", "0.8"}, kerr.InvalidConfig.Code, "[log.cleaner.io.buffer.load.factor]"},
		{"bad broker value", false, kmsg.ConfigResourceTypeBroker, "0", []string{"log.retention.ms", "soon"}, kerr.InvalidRequest.Code, "log.retention.ms"},
		{"broker validate only", true, kmsg.ConfigResourceTypeBroker, "0", []string{"log.retention.ms", "1"}, 0, ""},
		{"other broker", false, kmsg.ConfigResourceTypeBroker, "3", nil, kerr.InvalidRequest.Code, "expected 0"},
		{"broker logger", false, kmsg.ConfigResourceTypeBrokerLogger, "0", nil, kerr.InvalidRequest.Code, "BROKER_LOGGER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := admAlterLegacy(t, cl, tc.validate, tc.typ, tc.resource, tc.kv...)
			if r.ErrorCode != tc.code || (tc.msg != "" && (r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, tc.msg))) {
				t.Fatalf("code %d %v, want %d with %q", r.ErrorCode, r.ErrorMessage, tc.code, tc.msg)
			}
			check(admConfigs(t, adm, "legacy"))
		})
	}

	// A resource named twice is refused in both entries.
	req := kmsg.NewPtrAlterConfigsRequest()
	for range 2 {
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "legacy"
		req.Resources = append(req.Resources, rr)
	}
	resp := admRaw[*kmsg.AlterConfigsResponse](t, cl, req)
	if len(resp.Resources) != 2 || resp.Resources[0].ErrorCode != kerr.InvalidRequest.Code || resp.Resources[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("duplicate resource: %+v", resp.Resources)
	}
	check(admConfigs(t, adm, "legacy"))

	// The overrides survive a restart, and still apply to the log.
	b.Stop(t)
	b = startBroker(t, dir, props)
	check(admConfigs(t, b.admin(t), "legacy"))
	p, err = b.Cluster.Partition("legacy", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(admBatch(t, 1, 5000), partition.AppendRules{}); !errors.Is(err, partition.ErrBatchTooLarge) {
		t.Fatalf("append above max.message.bytes after restart: %v", err)
	}
}
