// Package lint holds tests that keep the architecture honest: which
// packages may depend on which (docs/DESIGN.md, "Walls").
package lint

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/stromhq/strom/"

// The broker's layers, top to bottom: server → handlers → coordinators →
// partition → (raft) → storage → record. Each wall says what a package
// (prefix match under the module) must not depend on (prefix match):
// transitively, through any chain of imports, unless direct is set, when
// only its own imports count (a wall the layer above it needs to cross).
var walls = []struct {
	pkg       string
	forbidden []string
	direct    bool
	why       string
}{
	{"internal/record", []string{"net", "github.com/twmb/franz-go", "go.etcd.io/raft", module + "internal/storage", module + "internal/kafka"}, false,
		"record is the bottom of the storage stack: bytes in, bytes out"},
	{"internal/storage", []string{"net", "github.com/twmb/franz-go", "go.etcd.io/raft", module + "internal/kafka", module + "internal/partition",
		module + "internal/cluster", module + "internal/broker", module + "internal/coordinator", module + "internal/metadata"}, false,
		"storage knows no protocol, socket, raft or anything above it"},
	{"internal/raftlog", []string{"net", "github.com/twmb/franz-go", module + "internal/kafka", module + "internal/cluster",
		module + "internal/coordinator", module + "internal/partition", module + "internal/metadata", module + "internal/broker"}, false,
		"the raft log is storage seen by raft: no protocol, socket or anything above the partition"},
	{"internal/raftgroup", []string{"net", "github.com/twmb/franz-go", module + "internal/kafka", module + "internal/cluster",
		module + "internal/coordinator", module + "internal/partition", module + "internal/metadata", module + "internal/broker",
		module + "internal/raftnet"}, false,
		"a raft group runs raft over its log: no socket (the broker wires the transport to it), nothing above the partition"},
	{"internal/raftnet", []string{"github.com/twmb/franz-go", module + "internal/kafka", module + "internal/cluster",
		module + "internal/coordinator", module + "internal/partition", module + "internal/metadata", module + "internal/broker",
		module + "internal/storage", module + "internal/raftlog"}, false,
		"the raft transport moves raft messages between sockets: it opens sockets (with kafka/server the only ones that do) and knows nothing of what raft replicates"},
	{"internal/partition", []string{"net", "github.com/twmb/franz-go", module + "internal/kafka", module + "internal/cluster",
		module + "internal/coordinator", module + "internal/metadata"}, false,
		"a partition is its log and producer state, below every protocol"},
	{"internal/metadata", []string{"net", "github.com/twmb/franz-go", module + "internal/kafka", module + "internal/cluster",
		module + "internal/coordinator"}, false,
		"metadata is protocol-free"},
	{"internal/cluster", []string{"net", "github.com/twmb/franz-go", module + "internal/kafka", module + "internal/coordinator",
		module + "internal/broker"}, false,
		"the broker's state knows no protocol; Kafka error codes live only in the handlers"},
	{"internal/coordinator", []string{"net", "github.com/twmb/franz-go", module + "internal/kafka", module + "internal/broker",
		module + "internal/cluster"}, false,
		"coordinators are protocol-free, and know partitions, not the broker's state"},
	{"internal/coordinator", []string{module + "internal/storage"}, true,
		"coordinators write through the partition, which the broker hands them"},
	{"internal/kafka/handler", []string{module + "internal/broker", module + "internal/cli", module + "internal/console", module + "cmd"}, false,
		"handlers sit below the composition root"},
	{"internal/kafka/handler", []string{"net", module + "internal/storage"}, true,
		"only kafka/server touches sockets (handlers get its Request); handlers reach a log only through its partition"},
	{"internal/acl", []string{"net", "github.com/twmb/franz-go", module + "internal/kafka", module + "internal/metadata", module + "internal/storage",
		module + "internal/cluster", module + "internal/broker", module + "internal/auth"}, false,
		"the authorizer is a pure decision over bindings: no protocol codes, no store, no sockets (metadata stores its bindings)"},
	{"internal/auth", []string{"github.com/twmb/franz-go", module + "internal/kafka", module + "internal/metadata", module + "internal/storage",
		module + "internal/cluster", module + "internal/broker", module + "internal/coordinator", module + "internal/partition"}, false,
		"authentication and authorization are pure decisions: no protocol codes (kerr lives in the handlers), no store, no broker"},
	{"internal/auth", []string{"net"}, true,
		"only kafka/server touches sockets (crypto/x509 brings net in, auth must not use it)"},
	{"internal/tlsconf", []string{"github.com/twmb/franz-go", module + "internal/kafka", module + "internal/metadata", module + "internal/storage",
		module + "internal/cluster", module + "internal/broker"}, false,
		"TLS configuration is built from files and settings, below the listener that uses it"},
	{"internal/tlsconf", []string{"net"}, true,
		"only kafka/server touches sockets; tlsconf hands it a tls.Config"},
	{"internal/console", []string{module + "internal/broker", module + "internal/cluster", module + "internal/kafka", module + "internal/storage",
		module + "internal/coordinator", module + "internal/partition", module + "internal/metadata", module + "cmd"}, false,
		"the console is a Kafka client, not a back door into the broker"},
	{"internal/cleanermetrics", []string{module + "internal/broker", module + "internal/cluster", module + "internal/kafka", module + "internal/storage",
		module + "internal/coordinator", module + "internal/partition", module + "internal/metadata", module + "cmd"}, false,
		"the cleaner's metrics are read from the broker's /metrics page by Kafka clients (the CLI, the console), never from the broker"},
	{"internal/cli", []string{module + "internal/broker", module + "internal/kafka", module + "internal/storage", module + "internal/cluster",
		module + "internal/coordinator", module + "internal/partition", module + "internal/metadata", module + "cmd"}, false,
		"the CLI is a Kafka client; the commands that run a broker are cmd/strom/servecmd's"},
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			t.Fatalf("go list line %q", line)
		}
		rel := strings.TrimPrefix(parts[0], module)
		for _, w := range walls {
			if rel != w.pkg && !strings.HasPrefix(rel, w.pkg+"/") {
				continue
			}
			checked[w.pkg]++
			deps := parts[2]
			if w.direct {
				deps = parts[1]
			}
			for _, dep := range strings.Fields(deps) {
				for _, f := range w.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") {
						t.Errorf("%s depends on %s: %s", rel, dep, w.why)
					}
				}
			}
		}
	}
	for _, w := range walls {
		if checked[w.pkg] == 0 {
			t.Errorf("no package matches %s: a wall that guards nothing", w.pkg)
		}
	}
}
