package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The files of kafka-reassign-partitions.sh and kafka-leader-election.sh:
// what they accept, and a clear refusal of the rest.
func TestReassignmentAndElectionFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		t.Helper()
		p := filepath.Join(dir, "f.json")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f, err := readReassignment(write(`{"version":1,"partitions":[{"topic":"t","partition":2,"replicas":[3,1,2],"log_dirs":["any","any","any"]}]}`))
	if err != nil || len(f.Partitions) != 1 || f.Partitions[0].Partition != 2 || len(f.Partitions[0].Replicas) != 3 {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []struct{ json, says string }{
		{`{"version":2,"partitions":[{"topic":"t","partition":0,"replicas":[1,2]}]}`, "version 2"},
		{`{"version":1,"partitions":[]}`, "no partitions"},
		{`{"version":1,`, "not a reassignment JSON"},
	} {
		if _, err := readReassignment(write(bad.json)); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%s: %v, want %q", bad.json, err, bad.says)
		}
	}
	set, err := readElectionFile(write(`{"partitions":[{"topic":"t","partition":0},{"topic":"t","partition":3},{"topic":"u","partition":0}]}`))
	if err != nil || len(set["t"]) != 2 || len(set["u"]) != 1 {
		t.Fatalf("%v %v", set, err)
	}
	for _, bad := range []struct{ json, says string }{
		{`{"partitions":[{"topic":"t"}]}`, "needs a topic and a partition"},
		{`{"partitions":[]}`, "no partitions"},
		{`[`, "not a partitions JSON"},
	} {
		if _, err := readElectionFile(write(bad.json)); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("%s: %v, want %q", bad.json, err, bad.says)
		}
	}
}
