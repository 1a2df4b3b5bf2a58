package metadata

import (
	"errors"
	"testing"
)

// TestListenerJAAS: Kafka's per-listener, per-mechanism JAAS config is a
// known setting (the broker starts), wins over sasl.jaas.config, and is a
// PASSWORD config (never shown by DescribeConfigs).
func TestListenerJAAS(t *testing.T) {
	const perListener = "listener.name.internal.scram-sha-256.sasl.jaas.config"
	bc, err := NewBrokerConfig(map[string]string{perListener: "listener's", "sasl.jaas.config": "global"})
	if err != nil {
		t.Fatal(err)
	}
	if v, key := bc.ListenerJAAS("INTERNAL", "SCRAM-SHA-256"); v != "listener's" || key != perListener {
		t.Fatalf("got %q from %q", v, key)
	}
	if v, key := bc.ListenerJAAS("INTERNAL", "PLAIN"); v != "global" || key != "sasl.jaas.config" {
		t.Fatalf("PLAIN: got %q from %q", v, key)
	}
	empty, _ := NewBrokerConfig(nil)
	if v, key := empty.ListenerJAAS("INTERNAL", "PLAIN"); v != "" || key != "" {
		t.Fatalf("unset: got %q from %q", v, key)
	}
	for _, k := range []string{perListener, "sasl.jaas.config", "listener.name.x.plain.sasl.jaas.config"} {
		if !IsSensitiveConfig(k) {
			t.Fatalf("%s is not sensitive", k)
		}
	}
	for _, k := range []string{"listener.name.x.kerberos.sasl.jaas.config", "listener.name.x.plain.sasl.other"} {
		if _, err := NewBrokerConfig(map[string]string{k: "v"}); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%s: %v, want unknown config", k, err)
		}
	}
}
