package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestClusterInfo(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		c.ok(t, nil, "topic", "create", "a", "-p", "1")
		c.ok(t, nil, "topic", "create", "b", "-p", "1")
		info, infoJSON := c.ok(t, nil, "cluster", "info"), c.ok(t, nil, "cluster", "info", "--output", "json")
		if c.kfake == nil {
			// Strom is a cluster of one: its metadata quorum of one voter
			// follows (kfake has none).
			info, infoJSON = cutQuorum(t, info, infoJSON)
		}
		same(t, "info", info, wantClusterInfo(t, c.admin(t), 2))
		same(t, "info json", infoJSON, wantClusterInfoJSON(t, c.admin(t), 2))
	})
	t.Run("kfake with three brokers", func(t *testing.T) {
		t.Parallel()
		kc, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kc.Close)
		c := &cluster{name: "kfake", addr: kc.ListenAddrs()[0], kfake: kc}
		c.ok(t, nil, "topic", "create", "r3", "-p", "2", "-r", "3")
		same(t, "info", c.ok(t, nil, "cluster", "info"), wantClusterInfo(t, c.admin(t), 1))
		same(t, "list", c.ok(t, nil, "topic", "list"), renderTable(row("TOPIC", "PARTITIONS", "REPLICATION-FACTOR"), row("r3", 2, 3)))
	})
}

// cutQuorum checks that a single Strom node's cluster info ends with its
// metadata quorum of one voter, which it leads, and cuts it off.
func cutQuorum(t *testing.T, info, infoJSON string) (string, string) {
	t.Helper()
	i := strings.Index(info, "\nMetadata quorum:  leader ")
	if i < 0 || !strings.Contains(info[i:], "VOTER") || strings.Count(strings.TrimSpace(info[i:]), "\n") != 2 {
		t.Fatalf("cluster info of a single node: no quorum of one voter:\n%s", info)
	}
	j := strings.Index(infoJSON, ",\n  \"quorum\": {")
	if j < 0 {
		t.Fatalf("cluster info --output json of a single node: no quorum:\n%s", infoJSON)
	}
	return info[:i], infoJSON[:j] + "\n}\n"
}

func wantClusterInfo(t *testing.T, adm *kadm.Client, topics int) string {
	t.Helper()
	m, vs := clusterState(t, adm)
	var b strings.Builder
	fmt.Fprintf(&b, "Cluster ID:  %s\nController:  %d\nTopics:      %d\n\n", m.Cluster, m.Controller, topics)
	rows := [][]string{row("BROKER", "HOST", "PORT", "RACK")}
	for _, br := range m.Brokers {
		rack := "-"
		if br.Rack != nil {
			rack = *br.Rack
		}
		rows = append(rows, row(br.NodeID, br.Host, br.Port, rack))
	}
	b.WriteString(renderTable(rows...))
	who := fmt.Sprintf("broker %d", m.Brokers[0].NodeID)
	if len(m.Brokers) > 1 {
		who = "all brokers"
	}
	fmt.Fprintf(&b, "\nAPI versions of %s:\n", who)
	rows = [][]string{row("API", "KEY", "MIN", "MAX")}
	vs[0].EachKeySorted(func(k, lo, hi int16) { rows = append(rows, row(apiName(k), k, lo, hi)) })
	b.WriteString(renderTable(rows...))
	if len(rows) < 10 {
		t.Fatalf("only %d APIs listed", len(rows)-1)
	}
	return b.String()
}

func wantClusterInfoJSON(t *testing.T, adm *kadm.Client, topics int) string {
	t.Helper()
	m, vs := clusterState(t, adm)
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"cluster_id\": %q,\n  \"controller\": %d,\n  \"topics\": %d,\n  \"brokers\": [\n", m.Cluster, m.Controller, topics)
	br := m.Brokers[0]
	rack := "null"
	if br.Rack != nil {
		rack = fmt.Sprintf("%q", *br.Rack)
	}
	fmt.Fprintf(&b, "    {\n      \"id\": %d,\n      \"host\": %q,\n      \"port\": %d,\n      \"rack\": %s\n    }\n  ],\n", br.NodeID, br.Host, br.Port, rack)
	fmt.Fprintf(&b, "  \"api_versions\": [\n    {\n      \"broker\": %d,\n      \"apis\": [\n", br.NodeID)
	var apis []string
	vs[0].EachKeySorted(func(k, lo, hi int16) {
		apis = append(apis, fmt.Sprintf("        {\n          \"key\": %d,\n          \"name\": %q,\n          \"min\": %d,\n          \"max\": %d\n        }", k, apiName(k), lo, hi))
	})
	b.WriteString(strings.Join(apis, ",\n"))
	b.WriteString("\n      ]\n    }\n  ]\n}\n")
	return b.String()
}

func clusterState(t *testing.T, adm *kadm.Client) (kadm.Metadata, []kadm.BrokerApiVersions) {
	t.Helper()
	m, err := adm.BrokerMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := adm.ApiVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m, vs.Sorted()
}
