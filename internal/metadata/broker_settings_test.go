package metadata

import (
	"reflect"
	"testing"
	"time"
)

// TestBrokerSettingsCoverEverySetting: every broker setting has a typed
// field (or only derives topic defaults), and every field names a setting,
// so no code needs to look a setting up by a string it could misspell.
func TestBrokerSettingsCoverEverySetting(t *testing.T) {
	fields := map[string]bool{}
	rt := reflect.TypeOf(BrokerSettings{})
	for i := 0; i < rt.NumField(); i++ {
		name, _ := splitTag(rt.Field(i).Tag.Get("config"))
		if fields[name] {
			t.Errorf("two fields for %s", name)
		}
		fields[name] = true
	}
	for _, s := range brokerSettings {
		if !fields[s.Name] && !topicSynonymSettings[s.Name] {
			t.Errorf("broker setting %s has no BrokerSettings field", s.Name)
		}
	}
	if _, err := (*BrokerConfig)(nil).resolveSettings(); err != nil {
		t.Fatal(err)
	}
}

func TestBrokerSettingsValues(t *testing.T) {
	bc, err := NewBrokerConfig(map[string]string{"node.id": "3", "offsets.retention.minutes": "2", "group.initial.rebalance.delay.ms": "0",
		"auto.create.topics.enable": "false", "http.allowed.hosts": "a.example, b.example", "default.replication.factor": "3"})
	if err != nil {
		t.Fatal(err)
	}
	s := bc.Settings()
	if s.NodeID != 3 || s.OffsetsRetention != 2*time.Minute || s.GroupInitialRebalanceDelay != 0 || s.AutoCreateTopics ||
		len(s.HTTPAllowedHosts) != 2 || s.DefaultReplicationFactor != 3 {
		t.Fatalf("settings %+v", s)
	}
	// Defaults.
	if s.NumPartitions != 1 || s.ConnectionsMaxIdle != 10*time.Minute || s.GroupMaxSessionTimeout != 30*time.Minute || s.MaxBrokerPartitions != 20000 {
		t.Fatalf("defaults %+v", s)
	}
	if _, err := NewBrokerConfig(map[string]string{"node.idd": "3"}); err == nil {
		t.Fatal("a misspelt setting was accepted")
	}
	if _, err := NewBrokerConfig(map[string]string{"node.id": "99999999999"}); err == nil {
		t.Fatal("node.id past int32 accepted")
	}
}
