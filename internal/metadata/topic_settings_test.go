package metadata

import "testing"

// TestResolveTopic: the typed fields follow the override, then the broker
// value, then Kafka's default.
func TestResolveTopic(t *testing.T) {
	def := ResolveTopic(nil, nil)
	if def.MinInsyncReplicas != 1 || !def.DownconversionEnable || def.Log.MaxBatchBytes != 1048588 {
		t.Fatalf("defaults %+v", def)
	}
	bc, err := NewBrokerConfig(map[string]string{"min.insync.replicas": "2", "log.message.downconversion.enable": "false", "message.max.bytes": "5000"})
	if err != nil {
		t.Fatal(err)
	}
	s := ResolveTopic(map[string]string{"min.insync.replicas": "3"}, bc)
	if s.MinInsyncReplicas != 3 || s.DownconversionEnable || s.Log.MaxBatchBytes != 5000 {
		t.Fatalf("resolved %+v", s)
	}
}
