package handler

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestIncrementalAlterConfigs(t *testing.T) {
	dir := t.TempDir()
	props := map[string]string{"log.retention.ms": "1000000"}
	b := startBroker(t, dir, props)
	adm := b.admin(t)
	ctx := admCtx(t)
	admCreate(t, adm, "inc", 1, map[string]*string{"max.message.bytes": kadm.StringPtr("4000")})

	alter := func(ops ...kadm.AlterConfig) kadm.AlterConfigsResponse {
		t.Helper()
		resps, err := adm.AlterTopicConfigs(ctx, ops, "inc")
		if err != nil {
			t.Fatal(err)
		}
		r, err := resps.On("inc", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	set := func(name, value string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}
	}

	if r := alter(set("retention.ms", "1234"), set("segment.bytes", "200000")); r.Err != nil {
		t.Fatalf("set: %v %s", r.Err, r.ErrMessage)
	}
	cs := admConfigs(t, adm, "inc")
	checkConfig(t, cs, "retention.ms", "1234", srcTopic,
		synonymWant{"retention.ms", "1234", srcTopic}, synonymWant{"log.retention.ms", "1000000", srcStatic},
		synonymWant{"log.retention.ms", "604800000", srcDefault})
	checkConfig(t, cs, "segment.bytes", "200000", srcTopic)
	checkConfig(t, cs, "max.message.bytes", "4000", srcTopic) // untouched

	// DELETE falls back to the broker's value; deleting what is not set
	// is a no-op. APPEND to a list starts from its current value.
	r := alter(
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "flush.ms"},
		kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")},
	)
	if r.Err != nil {
		t.Fatalf("delete/append: %v %s", r.Err, r.ErrMessage)
	}
	cs = admConfigs(t, adm, "inc")
	checkConfig(t, cs, "retention.ms", "1000000", srcStatic)
	checkConfig(t, cs, "cleanup.policy", "delete", srcTopic)

	// ValidateOnly changes nothing.
	vr, err := adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{set("segment.bytes", "300000")}, "inc")
	if err != nil || vr[0].Err != nil {
		t.Fatalf("validate: %v %+v", err, vr)
	}

	for _, tc := range []struct {
		name string
		op   kadm.AlterConfig
		want error
		msg  string
	}{
		{"append unsupported item", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("shred")}, kerr.InvalidConfig, "cleanup.policy"},
		{"subtract to empty", kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")}, kerr.InvalidConfig, "cleanup.policy"},
		{"append to a non-list", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: kadm.StringPtr("1")}, kerr.InvalidRequest, "not a list"},
		{"append unknown", kadm.AlterConfig{Op: kadm.AppendConfig, Name: "nope", Value: kadm.StringPtr("1")}, kerr.InvalidConfig, "nope"},
		{"set unknown", set("nope", "1"), kerr.InvalidConfig, "nope"},
		{"set bad value", set("segment.bytes", "-5"), kerr.InvalidConfig, "segment.bytes"},
		{"set null", kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes"}, kerr.InvalidRequest, "null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := alter(tc.op)
			if !errors.Is(r.Err, tc.want) || !strings.Contains(r.ErrMessage, tc.msg) {
				t.Fatalf("got %v %q, want %v with %q", r.Err, r.ErrMessage, tc.want, tc.msg)
			}
		})
	}
	if r := alter(set("segment.bytes", "1"), set("segment.bytes", "2")); !errors.Is(r.Err, kerr.InvalidRequest) {
		t.Fatalf("config twice: %v", r.Err)
	}
	unknown, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("retention.ms", "1")}, "nowhere")
	if err != nil || !errors.Is(unknown[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v %+v", err, unknown)
	}
	br, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("num.partitions", "3")}, 0)
	if err != nil || !errors.Is(br[0].Err, kerr.InvalidRequest) || !strings.Contains(br[0].ErrMessage, "Cannot update these configs dynamically: [num.partitions]") {
		t.Fatalf("static broker config: %v %+v", err, br)
	}

	check := func(cs map[string]kadm.Config) {
		t.Helper()
		checkConfig(t, cs, "segment.bytes", "200000", srcTopic)
		checkConfig(t, cs, "max.message.bytes", "4000", srcTopic)
		checkConfig(t, cs, "cleanup.policy", "delete", srcTopic)
		checkConfig(t, cs, "retention.ms", "1000000", srcStatic)
	}
	check(admConfigs(t, adm, "inc"))
	b.Stop(t)
	b = startBroker(t, dir, props)
	check(admConfigs(t, b.admin(t), "inc"))
}

func TestIncrementalAlterConfigsRawResources(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	admCreate(t, kadm.NewClient(cl), "raw", 1, nil)
	admCreate(t, kadm.NewClient(cl), "raw-op", 1, nil)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, r := range []struct {
		t    kmsg.ConfigResourceType
		name string
		op   kmsg.IncrementalAlterConfigOp
	}{
		{kmsg.ConfigResourceTypeTopic, "raw", kmsg.IncrementalAlterConfigOpSet},
		{kmsg.ConfigResourceTypeTopic, "raw", kmsg.IncrementalAlterConfigOpSet},
		{kmsg.ConfigResourceTypeBrokerLogger, "0", kmsg.IncrementalAlterConfigOpSet},
		{kmsg.ConfigResourceTypeBroker, "9", kmsg.IncrementalAlterConfigOpSet},
		{kmsg.ConfigResourceTypeTopic, "raw-op", 9},
	} {
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.t, r.name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "retention.ms", r.op, kmsg.StringPtr("1")
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
	}
	resp := admRaw[*kmsg.IncrementalAlterConfigsResponse](t, cl, req)
	if len(resp.Resources) != 5 {
		t.Fatalf("%d answers", len(resp.Resources))
	}
	for i, r := range resp.Resources {
		if r.ErrorCode != kerr.InvalidRequest.Code || r.ErrorMessage == nil {
			t.Errorf("resource %d: %d %v", i, r.ErrorCode, r.ErrorMessage)
		}
	}
	for _, name := range []string{"raw", "raw-op"} {
		if tp, _ := b.Cluster.Topic(name); len(tp.Configs) != 0 {
			t.Fatalf("a refused resource changed %s: %v", name, tp.Configs)
		}
	}
}

func TestListItems(t *testing.T) {
	for _, tc := range []struct {
		list, arg, appended, subtracted string
	}{
		{"", "a", "a", ""},
		{"a,b", "b,c", "a,b,c", "a"},
		{" a , b ", "a", "a,b", "b"},
		{"a", "", "a", "a"},
		{"a,,b", "c, a", "a,b,c", "b"},
	} {
		if got := appendListItems(tc.list, tc.arg); got != tc.appended {
			t.Errorf("append %q + %q = %q, want %q", tc.list, tc.arg, got, tc.appended)
		}
		if got := subtractListItems(tc.list, tc.arg); got != tc.subtracted {
			t.Errorf("subtract %q - %q = %q, want %q", tc.list, tc.arg, got, tc.subtracted)
		}
	}
}
