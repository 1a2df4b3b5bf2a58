package logdir

import (
	"testing"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// bootFS is a memfs whose machine reports a boot id (vfs.BootIDer).
type bootFS struct {
	*memfs.FS
	id string
}

func (b bootFS) BootID() string { return b.id }

// kill drops d as a kill -9 would: no clean close, the lock released by the
// kernel, the files (page cache) as they are.
func kill(d *Dir) { d.lock.Close() }

// TestTrustCacheOnlyInTheSameBoot: recovery after a kill trusts the page
// cache (walks headers only) only when the previous start finished
// recovering in this same boot; after a reboot, or when that start was
// itself killed while validating data of an earlier boot, it validates
// everything.
func TestTrustCacheOnlyInTheSameBoot(t *testing.T) {
	mem := memfs.New()
	p := Partition{Topic: "t", Partition: 0}
	open := func(boot string) *Dir {
		t.Helper()
		d, err := Open(bootFS{mem, boot}, "/data", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.OpenLog(p, seglog.Config{}); err != nil {
			t.Fatal(err)
		}
		return d
	}

	d := open("A")
	if d.sameBoot {
		t.Fatal("a new directory trusted")
	}
	d.Recovered()
	kill(d)

	d = open("A")
	if !d.sameBoot {
		t.Fatal("a kill in the same boot, after a finished recovery: not trusted")
	}
	d.Recovered()
	kill(d)

	// A reboot: everything is validated, and a kill during that validation
	// (before Recovered) must not let the next start trust the data.
	d = open("B")
	if d.sameBoot {
		t.Fatal("another boot trusted")
	}
	kill(d)
	d = open("B")
	if d.sameBoot {
		t.Fatal("trusted although the start that validated the data of boot A was killed before it finished")
	}
	d.Recovered()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// A clean start trusts by the marker, not the boot.
	d = open("B")
	if d.sameBoot || !d.WasClean() {
		t.Fatalf("clean start: sameBoot %v clean %v", d.sameBoot, d.WasClean())
	}
	d.Close()
	// No boot id (not Linux, or a filesystem that cannot tell): never.
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Recovered()
	kill(d)
	if d, err = Open(mem, "/data", nil); err != nil || d.sameBoot {
		t.Fatalf("no boot id: sameBoot %v %v", d.sameBoot, err)
	}
	d.Close()
}
