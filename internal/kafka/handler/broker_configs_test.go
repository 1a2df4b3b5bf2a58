package handler

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/seglog"
)

var (
	srcDynBroker  = kmsg.ConfigSourceDynamicBrokerConfig
	srcDynDefault = kmsg.ConfigSourceDynamicDefaultBrokerConfig
)

// brokerConfigsOf describes a broker resource ("" for the cluster-wide
// default), by name.
func brokerConfigsOf(t *testing.T, adm *kadm.Client, brokers ...int32) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(admCtx(t), brokers...)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe broker %v: %v %+v", brokers, err, rcs)
	}
	out := map[string]kadm.Config{}
	for _, c := range rcs[0].Configs {
		out[c.Key] = c
	}
	return out
}

// appendErr appends one batch of n bytes of value to p.
func appendErr(t *testing.T, p *partition.Partition, n int) error {
	t.Helper()
	_, err := p.Append(admBatch(t, 1, n), partition.AppendRules{})
	return err
}

// Issue 15 item 11: Kafka's dynamic broker configs are accepted on the
// broker resource (this broker and the cluster-wide default), applied to
// the open logs at once, shown with their dynamic source, and kept across
// a restart; static ones are refused by name.
func TestDynamicBrokerConfigs(t *testing.T) {
	dir := t.TempDir()
	props := map[string]string{"log.retention.ms": "1000000"}
	b := startBroker(t, dir, props)
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	ctx := admCtx(t)
	admCreate(t, adm, "dyn", 1, nil)
	admCreate(t, adm, "own", 1, map[string]*string{"max.message.bytes": kadm.StringPtr("9000")})
	set := func(k, v string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)}
	}
	alter := func(cs []kadm.AlterConfig, brokers ...int32) {
		t.Helper()
		rs, err := adm.AlterBrokerConfigs(ctx, cs, brokers...)
		if err != nil || len(rs) != 1 || rs[0].Err != nil {
			t.Fatalf("alter broker %v: %v %+v", brokers, err, rs)
		}
	}
	part := func(topic string) *partition.Partition {
		t.Helper()
		p, err := b.Cluster.Partition(topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// The cluster-wide default: topics without an override follow it at once.
	alter([]kadm.AlterConfig{set("message.max.bytes", "3000")})
	checkConfig(t, admConfigs(t, adm, "dyn"), "max.message.bytes", "3000", srcDynDefault,
		synonymWant{"message.max.bytes", "3000", srcDynDefault}, synonymWant{"message.max.bytes", "1048588", srcDefault})
	if err := appendErr(t, part("dyn"), 5000); !errors.Is(err, seglog.ErrBatchTooLarge) {
		t.Fatalf("5000 bytes under a dynamic message.max.bytes of 3000: %v", err)
	}
	if err := appendErr(t, part("own"), 5000); err != nil {
		t.Fatalf("a topic override wins over the broker's: %v", err)
	}
	// This broker's own value wins over the default.
	alter([]kadm.AlterConfig{set("message.max.bytes", "10000"), set("log.retention.ms", "2000000")}, 0)
	checkConfig(t, admConfigs(t, adm, "dyn"), "max.message.bytes", "10000", srcDynBroker,
		synonymWant{"message.max.bytes", "10000", srcDynBroker}, synonymWant{"message.max.bytes", "3000", srcDynDefault},
		synonymWant{"message.max.bytes", "1048588", srcDefault})
	checkConfig(t, admConfigs(t, adm, "dyn"), "retention.ms", "2000000", srcDynBroker,
		synonymWant{"log.retention.ms", "2000000", srcDynBroker}, synonymWant{"log.retention.ms", "1000000", srcStatic},
		synonymWant{"log.retention.ms", "604800000", srcDefault})
	if err := appendErr(t, part("dyn"), 5000); err != nil {
		t.Fatalf("5000 bytes under message.max.bytes 10000: %v", err)
	}
	// (read-only flags: TestDescribeBrokerConfigs)
	checkConfig(t, brokerConfigsOf(t, adm, 0), "message.max.bytes", "10000", srcDynBroker)
	if def := brokerConfigsOf(t, adm); len(def) != 1 {
		t.Fatalf("default resource: %+v", def)
	} else {
		checkConfig(t, def, "message.max.bytes", "3000", srcDynDefault)
	}

	// A static config refuses the whole resource; nothing changes.
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("message.max.bytes", "1"), set("num.partitions", "3")}, 0)
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidRequest) || rs[0].ErrMessage != "Cannot update these configs dynamically: [num.partitions]" {
		t.Fatalf("static config: %v %+v", err, rs)
	}
	checkConfig(t, brokerConfigsOf(t, adm, 0), "message.max.bytes", "10000", srcDynBroker)

	// The legacy AlterConfigs replaces this broker's whole set.
	if r := admAlterLegacy(t, cl, false, kmsg.ConfigResourceTypeBroker, "0", "log.retention.ms", "2000000"); r.ErrorCode != 0 {
		t.Fatalf("legacy alter: %d %v", r.ErrorCode, r.ErrorMessage)
	}
	checkConfig(t, admConfigs(t, adm, "dyn"), "max.message.bytes", "3000", srcDynDefault)

	// A restart keeps the dynamic configs and applies them to the logs.
	b.Stop(t)
	b = startBroker(t, dir, props)
	adm = b.admin(t)
	cs := admConfigs(t, adm, "dyn")
	checkConfig(t, cs, "max.message.bytes", "3000", srcDynDefault)
	checkConfig(t, cs, "retention.ms", "2000000", srcDynBroker)
	if err := appendErr(t, part("dyn"), 5000); !errors.Is(err, seglog.ErrBatchTooLarge) {
		t.Fatalf("after a restart, 5000 bytes under message.max.bytes 3000: %v", err)
	}

	// APPEND and SUBTRACT work on list configs, from the current value;
	// the result is validated like a SET.
	appendOp := kadm.AlterConfig{Op: kadm.AppendConfig, Name: "log.cleanup.policy", Value: kadm.StringPtr("delete")}
	alter([]kadm.AlterConfig{appendOp}, 0)
	checkConfig(t, admConfigs(t, adm, "dyn"), "cleanup.policy", "delete", srcDynBroker)
	subtract := kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "log.cleanup.policy", Value: kadm.StringPtr("delete")}
	if rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{subtract}, 0); err != nil || !errors.Is(rs[0].Err, kerr.InvalidRequest) {
		t.Fatalf("an empty cleanup.policy: %v %+v", err, rs)
	}
	notList := kadm.AlterConfig{Op: kadm.AppendConfig, Name: "log.retention.ms", Value: kadm.StringPtr("1")}
	if rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{notList}, 0); err != nil || !errors.Is(rs[0].Err, kerr.InvalidRequest) {
		t.Fatalf("APPEND to a config that is not a list: %v %+v", err, rs)
	}
	alter([]kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "log.cleanup.policy"}}, 0)

	// DELETE returns to the static value or the default.
	del := func(k string) kadm.AlterConfig { return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k} }
	alter([]kadm.AlterConfig{del("message.max.bytes")})
	alter([]kadm.AlterConfig{del("log.retention.ms")}, 0)
	cs = admConfigs(t, adm, "dyn")
	checkConfig(t, cs, "max.message.bytes", "1048588", srcDefault)
	checkConfig(t, cs, "retention.ms", "1000000", srcStatic)
	if err := appendErr(t, part("dyn"), 5000); err != nil {
		t.Fatalf("after DELETE: %v", err)
	}
	if def := brokerConfigsOf(t, adm); len(def) != 0 {
		t.Fatalf("default resource after DELETE: %+v", def)
	}
}
