package handler

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/internal/metadata"
)

// admConfigs describes one topic's configs, by name.
func admConfigs(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(admCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v %s", topic, err, rc.Err, rc.ErrMessage)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

type synonymWant struct {
	name, value string
	src         kmsg.ConfigSource
}

func checkConfig(t *testing.T, cs map[string]kadm.Config, name, value string, src kmsg.ConfigSource, syns ...synonymWant) {
	t.Helper()
	c, ok := cs[name]
	if !ok {
		t.Fatalf("%s missing", name)
	}
	if c.MaybeValue() != value || c.Source != src {
		t.Fatalf("%s = %q from %v, want %q from %v", name, c.MaybeValue(), c.Source, value, src)
	}
	if syns == nil {
		return
	}
	var got []synonymWant
	for _, s := range c.Synonyms {
		got = append(got, synonymWant{s.Key, *s.Value, s.Source})
	}
	if !reflect.DeepEqual(got, syns) {
		t.Fatalf("%s synonyms %+v, want %+v", name, got, syns)
	}
}

var (
	srcTopic   = kmsg.ConfigSourceDynamicTopicConfig
	srcStatic  = kmsg.ConfigSourceStaticBrokerConfig
	srcDefault = kmsg.ConfigSourceDefaultConfig
)

func TestDescribeTopicConfigs(t *testing.T) {
	b := startBroker(t, "", map[string]string{"log.retention.ms": "1000000", "log.roll.hours": "2"})
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	admCreate(t, adm, "described", 1, map[string]*string{"max.message.bytes": kadm.StringPtr("2000")})

	cs := admConfigs(t, adm, "described")
	if len(cs) != len(metadata.TopicConfigs()) {
		t.Fatalf("%d configs, want every one of %d (defaults included)", len(cs), len(metadata.TopicConfigs()))
	}
	checkConfig(t, cs, "max.message.bytes", "2000", srcTopic,
		synonymWant{"max.message.bytes", "2000", srcTopic}, synonymWant{"message.max.bytes", "1048588", srcDefault})
	checkConfig(t, cs, "retention.ms", "1000000", srcStatic,
		synonymWant{"log.retention.ms", "1000000", srcStatic}, synonymWant{"log.retention.ms", "604800000", srcDefault})
	checkConfig(t, cs, "segment.ms", "7200000", srcStatic,
		synonymWant{"log.roll.hours", "2", srcStatic}, synonymWant{"log.roll.ms", "604800000", srcDefault})
	checkConfig(t, cs, "segment.bytes", "1073741824", srcDefault,
		synonymWant{"log.segment.bytes", "1073741824", srcDefault})
	checkConfig(t, cs, "cleanup.policy", "delete", srcDefault)

	// Names, documentation and types; an unknown topic fails only its own
	// resource.
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeDocumentation = true
	for _, name := range []string{"described", "unknown-topic", "bad/name"} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, name
		rr.ConfigNames = []string{"retention.ms", "no.such.config"}
		req.Resources = append(req.Resources, rr)
	}
	resp := admRaw[*kmsg.DescribeConfigsResponse](t, cl, req)
	if len(resp.Resources) != 3 {
		t.Fatalf("%d resources", len(resp.Resources))
	}
	r0 := resp.Resources[0]
	if r0.ErrorCode != 0 || len(r0.Configs) != 1 {
		t.Fatalf("filtered: %+v", r0)
	}
	if c := r0.Configs[0]; c.Name != "retention.ms" || c.ConfigType != kmsg.ConfigTypeLong || c.Documentation == nil || c.ReadOnly || c.IsSensitive || c.ConfigSynonyms != nil {
		t.Fatalf("retention.ms: %+v", c)
	}
	if r := resp.Resources[1]; r.ErrorCode != kerr.UnknownTopicOrPartition.Code || r.ErrorMessage == nil {
		t.Fatalf("unknown topic: %+v", r)
	}
	if r := resp.Resources[2]; r.ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("bad name: %+v", r)
	}
}

func TestDescribeConfigsV0IsDefault(t *testing.T) {
	b := startBroker(t, "", nil)
	admCreate(t, b.admin(t), "v0", 1, map[string]*string{"retention.ms": kadm.StringPtr("5000")})
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(32, 0)
	cl := b.client(t, kgo.MaxVersions(vs))
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "v0"
	req.Resources = append(req.Resources, rr)
	resp := admRaw[*kmsg.DescribeConfigsResponse](t, cl, req)
	if resp.Version != 0 || len(resp.Resources) != 1 || len(resp.Resources[0].Configs) == 0 {
		t.Fatalf("v%d: %+v", resp.Version, resp.Resources)
	}
	for _, c := range resp.Resources[0].Configs {
		if c.IsDefault != (c.Name != "retention.ms") {
			t.Errorf("%s: IsDefault %v", c.Name, c.IsDefault)
		}
	}
}

// brokerSynonymOf maps the topic configs' broker synonyms to the topic
// configs.
var brokerSynonymOf = func() map[string]string {
	m := map[string]string{}
	for _, c := range metadata.TopicConfigs() {
		m[c.Broker] = c.Name
	}
	return m
}()

func TestDescribeBrokerConfigs(t *testing.T) {
	b := startBroker(t, "", map[string]string{"log.retention.hours": "3", "num.partitions": "4"})
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	rcs, err := adm.DescribeBrokerConfigs(admCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("0", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("broker 0: %v %v", err, rc.Err)
	}
	cs := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		cs[c.Key] = c
	}
	checkConfig(t, cs, "num.partitions", "4", srcStatic,
		synonymWant{"num.partitions", "4", srcStatic}, synonymWant{"num.partitions", "1", srcDefault})
	checkConfig(t, cs, "log.retention.ms", "10800000", srcStatic,
		synonymWant{"log.retention.hours", "3", srcStatic}, synonymWant{"log.retention.ms", "604800000", srcDefault})
	checkConfig(t, cs, "node.id", "0", srcDefault)
	if c := cs["log.retention.minutes"]; c.Value != nil || c.Source != srcDefault {
		t.Fatalf("log.retention.minutes: %+v", c)
	}

	// The cluster-wide default resource has no dynamic configs.
	rcs, err = adm.DescribeBrokerConfigs(admCtx(t))
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil || len(rcs[0].Configs) != 0 {
		t.Fatalf("default resource: %v %+v", err, rcs)
	}

	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		t    kmsg.ConfigResourceType
		name string
	}{
		{kmsg.ConfigResourceTypeBroker, "0"},
		{kmsg.ConfigResourceTypeBroker, "7"},
		{kmsg.ConfigResourceTypeBroker, "zero"},
		{kmsg.ConfigResourceTypeBrokerLogger, "0"},
		{kmsg.ConfigResourceType(99), "x"},
	} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.t, r.name
		req.Resources = append(req.Resources, rr)
	}
	resp := admRaw[*kmsg.DescribeConfigsResponse](t, cl, req)
	for i, r := range resp.Resources {
		want := kerr.InvalidRequest.Code
		if i == 0 {
			want = 0
			for _, c := range r.Configs {
				// Only the topic configs' broker synonyms are dynamic.
				_, dynamic := brokerSynonymOf[c.Name]
				dynamic = dynamic && c.Name != "log.message.format.version" // as in Kafka 3.x
				if c.ReadOnly == dynamic {
					t.Errorf("broker config %s: read-only %v", c.Name, c.ReadOnly)
				}
			}
		}
		if r.ErrorCode != want || (want != 0 && r.ErrorMessage == nil) {
			t.Errorf("resource %d (%v %q): code %d, want %d", i, r.ResourceType, r.ResourceName, r.ErrorCode, want)
		}
	}
	if !errors.Is(kerr.ErrorForCode(resp.Resources[3].ErrorCode), kerr.InvalidRequest) {
		t.Fatal("broker logger accepted")
	}
}
