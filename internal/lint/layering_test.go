// Package lint holds tests that keep the architecture honest: which
// packages may import which (docs/DESIGN.md, "Walls").
package lint

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/stromhq/strom/"

// rules: a package (prefix match under the module) must not import any of
// the listed packages (prefix match), directly.
var rules = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{"internal/storage", []string{"github.com/twmb/franz-go", "net", module + "internal/kafka", module + "internal/partition", module + "internal/cluster", module + "internal/broker"},
		"storage knows nothing of the protocol or the network"},
	{"internal/record", []string{"github.com/twmb/franz-go", "net", module + "internal/storage", module + "internal/kafka"},
		"record is the bottom of the storage stack"},
	{"internal/partition", []string{"github.com/twmb/franz-go", "net", module + "internal/kafka", module + "internal/cluster"},
		"partitions are storage-side domain code"},
	{"internal/cluster", []string{"github.com/twmb/franz-go/pkg/kerr", "net", module + "internal/kafka"},
		"Kafka error codes live only in the handlers"},
	{"internal/coordinator", []string{"github.com/twmb/franz-go", "net", module + "internal/kafka", module + "internal/broker"},
		"coordinators are protocol-free: handlers translate kmsg to their calls"},
	{"internal/console", []string{module + "internal/broker", module + "internal/cluster", module + "internal/kafka", module + "internal/storage", module + "internal/coordinator", module + "internal/partition"},
		"the console is a Kafka client, not a back door into the broker"},
	{"internal/metadata", []string{"github.com/twmb/franz-go", "net", module + "internal/kafka"},
		"metadata is protocol-free"},
	{"internal/kafka/handler", []string{"net", module + "internal/broker", module + "internal/cli"},
		"handlers do not touch sockets"},
	{"internal/cli", []string{module + "internal/kafka", module + "internal/storage", module + "internal/cluster"},
		"the CLI is a Kafka client; only serve reaches the broker"},
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		rel := strings.TrimPrefix(pkg, module)
		for _, r := range rules {
			if !strings.HasPrefix(rel, r.pkg) {
				continue
			}
			for _, imp := range strings.Fields(imports) {
				for _, f := range r.forbidden {
					if imp == f || strings.HasPrefix(imp, f+"/") {
						t.Errorf("%s imports %s: %s", rel, imp, r.why)
					}
				}
			}
		}
	}
}
