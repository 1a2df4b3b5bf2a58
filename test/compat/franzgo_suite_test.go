package compat

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFranzGoSuite runs franz-go's own kgo integration tests (the suite its
// author runs against Kafka, Redpanda and kfake, pointed at a broker with
// KGO_SEEDS) against Strom. The suite is taken from the franz-go module
// this repository already depends on, copied out of the module cache into a
// temporary directory and run as its own module; nothing of it is kept.
//
// Share groups (Share*, KIP-932) are skipped: Strom does not implement
// them yet. Transactions (TestTxnEtl: chains of GroupTransactSession
// consume-transform-produce, checked exactly once) run.
func TestFranzGoSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute")
	}
	requireTool(t, "go")
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/twmb/franz-go").Output()
	if err != nil {
		t.Fatalf("locating the franz-go module: %v", err)
	}
	src := strings.TrimSpace(string(out))
	if src == "" {
		t.Fatal("the franz-go module is not in the module cache (go mod download)")
	}
	dir := filepath.Join(t.TempDir(), "franz-go")
	if out, err := exec.Command("cp", "-r", src, dir).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", src, err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", dir).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout", "9m", "-skip", "Share", "./pkg/kgo")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"KGO_SEEDS="+addr,
		"KGO_TEST_RF=1",          // one broker: replication factor 1
		"KGO_TEST_RECORDS=20000", // the suite's default is 500,000 per test
		"GOFLAGS=-mod=mod",
	)
	start := time.Now()
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("franz-go's kgo suite against Strom failed after %v: %v\nfailures:\n%s\nlast lines:\n%s",
			time.Since(start).Round(time.Second), err, failureLines(string(out), 100), lastLines(string(out), 30))
	}
	t.Logf("franz-go's kgo suite passed against Strom in %v", time.Since(start).Round(time.Second))
}

// failureLines returns up to n lines of the suite's output that say what
// failed: test results, assertion messages (file.go:line:) and panics. The
// suite logs every client step, so the last lines alone rarely show it.
func failureLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if failureLine.MatchString(l) && len(keep) < n {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

var failureLine = regexp.MustCompile(`--- FAIL|^\s*\S+_test\.go:\d+:|^\s*\S+\.go:\d+: |panic:|timed out`)

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
