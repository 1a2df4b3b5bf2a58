package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stromhq/strom/internal/metadata"
)

// The three files `make cluster` starts (config/cluster) are valid
// layouts of one cluster: nodes 1-3, Kafka on 9092/9192/9292, controllers
// on 9093/9193/9293, data in data-cluster/N, the same voters.
func TestMakeClusterConfigs(t *testing.T) {
	var voters []metadata.Voter
	for i := 1; i <= 3; i++ {
		f, err := os.Open(filepath.Join("..", "..", "config", "cluster", fmt.Sprintf("server%d.properties", i)))
		if err != nil {
			t.Fatal(err)
		}
		props, err := metadata.ParseProperties(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		bc, err := metadata.NewBrokerConfig(props)
		if err != nil {
			t.Fatalf("server%d: %v", i, err)
		}
		l, err := bc.Layout()
		if err != nil {
			t.Fatalf("server%d: %v", i, err)
		}
		port := 9092 + 100*(i-1)
		if bc.Settings().NodeID != int32(i) || l.KafkaAddr != fmt.Sprintf(":%d", port) || l.AdvertisedAddr != fmt.Sprintf("localhost:%d", port) ||
			l.ControllerAddr != fmt.Sprintf(":%d", port+1) || l.DataDir != fmt.Sprintf("data-cluster/%d", i) || len(l.Voters) != 3 {
			t.Fatalf("server%d: node %d, layout %+v", i, bc.Settings().NodeID, l)
		}
		if voters != nil && fmt.Sprint(voters) != fmt.Sprint(l.Voters) {
			t.Fatalf("server%d: voters %v, server1's %v", i, l.Voters, voters)
		}
		voters = l.Voters
	}
}
