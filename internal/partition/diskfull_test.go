package partition

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// On a full disk an idempotent producer's batch fails with ErrStorage and
// changes no producer state, so its retry once space returns is written
// (not OUT_OF_ORDER_SEQUENCE, not a false duplicate); a snapshot that
// fails leaves no half-written temporary file behind.
func TestDiskFullKeepsProducerStateAndNoTempFile(t *testing.T) {
	mem := memfs.New()
	var full atomic.Bool
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpWrite && full.Load() {
			return &errorfs.PartialWrite{N: 6}
		}
		return nil
	}))
	l, err := seglog.Open(fsys, "/d/t-0", seglog.Config{IndexMaxBytes: 4096}, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, err := Open("t", 0, l, Options{FS: fsys, Now: func() time.Time { return time.UnixMilli(1e12) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(idemBatch(t, 7, 0, 0, 2), AppendRules{}); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	if _, err := p.Append(idemBatch(t, 7, 0, 2, 2), AppendRules{}); !errors.Is(err, seglog.ErrStorage) {
		t.Fatalf("append on a full disk: %v, want ErrStorage", err)
	}
	if err := p.Snapshot(); err == nil {
		t.Fatal("snapshot on a full disk succeeded")
	}
	names, _ := mem.List("/d/t-0")
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("a failed snapshot left %s (%v)", n, names)
		}
	}
	full.Store(false)
	res, err := p.Append(idemBatch(t, 7, 0, 2, 2), AppendRules{})
	if err != nil || res.Duplicate || res.BaseOffset != 2 {
		t.Fatalf("retry after space returned: %+v %v", res, err)
	}
	if err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
}
