package logdir

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestIdentify: the first start formats the directory under a random
// cluster id; later starts keep it; another node.id or cluster is refused.
func TestIdentify(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Identify(1, "")
	if err != nil || m.NodeID != 1 || CheckUUID(m.ClusterID) != nil || CheckUUID(m.DirectoryID) != nil {
		t.Fatalf("first start: %+v %v", m, err)
	}
	d.Close()
	b, _ := mem.ReadFile("/data/meta.properties")
	if !strings.Contains(string(b), "cluster.id="+m.ClusterID+"\n") || !strings.Contains(string(b), "version=1\n") {
		t.Fatalf("meta.properties:\n%s", b)
	}
	d, _ = Open(mem, "/data", nil)
	defer d.Close()
	if again, err := d.Identify(1, ""); err != nil || again != m {
		t.Fatalf("second start: %+v %v, want %+v", again, err, m)
	}
	if _, err := d.Identify(2, ""); !errors.Is(err, ErrOtherNode) {
		t.Fatalf("another node.id: %v", err)
	}
	if _, err := d.Identify(1, RandomUUID()); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("another cluster: %v", err)
	}
}

// TestFormat is `strom storage format`: a bad id is refused, a formatted
// directory too unless --ignore-formatted finds the same identity.
func TestFormat(t *testing.T) {
	mem := memfs.New()
	id := RandomUUID()
	if _, err := Format(mem, "/data", "not-a-uuid", 1, false); !errors.Is(err, ErrBadUUID) {
		t.Fatalf("bad id: %v", err)
	}
	m, err := Format(mem, "/data", id, 3, false)
	if err != nil || m.ClusterID != id || m.NodeID != 3 {
		t.Fatalf("format: %+v %v", m, err)
	}
	if _, err := Format(mem, "/data", id, 3, false); !errors.Is(err, ErrFormatted) {
		t.Fatalf("format again: %v", err)
	}
	if again, err := Format(mem, "/data", id, 3, true); err != nil || again != m {
		t.Fatalf("--ignore-formatted: %+v %v", again, err)
	}
	if _, err := Format(mem, "/data", RandomUUID(), 3, true); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("--ignore-formatted, other cluster: %v", err)
	}
	// A bad file is an error, not a silent new identity.
	mem.WriteFile("/data/meta.properties", []byte("version=2\n"))
	d, _ := Open(mem, "/data", nil)
	defer d.Close()
	if _, err := d.Identify(3, ""); err == nil {
		t.Fatal("a meta.properties of an unknown version was accepted")
	}
}

// TestIdentifyOnFullDisk: a directory without meta.properties on a full
// disk gets an identity for the run, marked ErrMetaWrite, and keeps no
// temporary file.
func TestIdentifyOnFullDisk(t *testing.T) {
	mem := memfs.New()
	full := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpWrite && strings.Contains(name, "meta.properties") {
			return &errorfs.PartialWrite{N: 3, Err: syscall.ENOSPC}
		}
		return nil
	}))
	d, err := Open(full, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m, err := d.Identify(1, "")
	if !errors.Is(err, ErrMetaWrite) || CheckUUID(m.ClusterID) != nil {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := mem.Stat("/data/meta.properties.tmp"); err == nil {
		t.Fatal("a temporary file was left")
	}
}
