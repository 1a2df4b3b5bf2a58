package segment

import (
	"bytes"
	"math"
	"os"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// sectionBytes reads a section's bytes from its file.
func sectionBytes(t *testing.T, sec Section) []byte {
	t.Helper()
	b := make([]byte, sec.Len)
	if _, err := sec.File.ReadAt(b, sec.Off); err != nil {
		t.Fatal(err)
	}
	return b
}

// ReadSection hands out only what this process has checked: a segment
// opened from disk is read (and checked) first, then the same range comes
// as a section holding exactly the bytes Read returned. Sections hold
// whole batches within maxBytes, active and sealed alike.
func TestReadSection(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}
	s, err := Create(vfs.Default, dir, 0, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	end := appendBatches(t, s, 0, 30)
	batch := int(s.Size() / 30)
	// Appended by this process: a section at once, from the active segment.
	sec, ok, err := s.ReadSection(10, 5*batch+batch/2, math.MaxInt64)
	if err != nil || !ok {
		t.Fatalf("active segment: ok %v, err %v", ok, err)
	}
	want, err := s.Read(10, 5*batch+batch/2, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Len != 5*batch || sec.LastOffset != 19 || !bytes.Equal(sectionBytes(t, sec), want) {
		t.Fatalf("section of %d bytes ending at %d, want Read's %d bytes ending at 19", sec.Len, sec.LastOffset, len(want))
	}
	sec.Release()
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(vfs.Default, dir, 0, cfg, OpenOptions{NextOffset: end})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok, err := s.ReadSection(0, 1<<20, math.MaxInt64); ok || err != nil {
		t.Fatalf("unchecked data: ok %v, err %v; want a read first", ok, err)
	}
	want, err = s.Read(0, 10*batch, true, true)
	if err != nil {
		t.Fatal(err)
	}
	sec, ok, err = s.ReadSection(0, 1<<20, math.MaxInt64)
	if err != nil || !ok {
		t.Fatalf("checked data: ok %v, err %v", ok, err)
	}
	if !bytes.Equal(sectionBytes(t, sec), want) {
		t.Fatalf("section of %d bytes, want the %d checked bytes", sec.Len, len(want))
	}
	sec.Release()
	if _, ok, _ := s.ReadSection(0, batch-1, math.MaxInt64); ok {
		t.Fatal("a first batch larger than maxBytes came as a section (Read returns it whole)")
	}
}

// Files without an operating system descriptor (memfs, errorfs) are read.
func TestReadSectionNeedsOSFile(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/p")
	s, err := Create(mem, "/p", 0, Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendBatches(t, s, 0, 3)
	if _, ok, err := s.ReadSection(0, 1<<20, math.MaxInt64); ok || err != nil {
		t.Fatalf("memfs: ok %v, err %v", ok, err)
	}
}

// A descriptor that cannot be opened for a section (here the path is gone;
// in production, EMFILE) is no error: the caller reads, through the
// active segment's own descriptor.
func TestReadSectionFallsBackWhenOpenFails(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(vfs.Default, dir, 0, Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendBatches(t, s, 0, 3)
	logPath, _, _ := FileNames(dir, 0)
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ReadSection(0, 1<<20, math.MaxInt64); ok || err != nil {
		t.Fatalf("unopenable file: ok %v, err %v; want a read instead", ok, err)
	}
	if data, err := s.Read(0, 1<<20, true, true); err != nil || len(data) == 0 {
		t.Fatalf("read through the segment's own descriptor: %d bytes, %v", len(data), err)
	}
}

// A section stops before the first batch at or past its bound (a
// replicated partition's high watermark).
func TestReadSectionBelow(t *testing.T) {
	s, err := Create(vfs.Default, t.TempDir(), 0, Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendBatches(t, s, 0, 10) // two records a batch: offsets 0-19
	batch := int(s.Size() / 10)
	sec, ok, err := s.ReadSection(4, 1<<20, 10)
	if err != nil || !ok {
		t.Fatalf("ok %v, err %v", ok, err)
	}
	defer sec.Release()
	if sec.Off != int64(2*batch) || sec.Len != 3*batch || sec.LastOffset != 9 {
		t.Fatalf("section at %d of %d bytes to offset %d, want at %d of %d bytes to offset 9", sec.Off, sec.Len, sec.LastOffset, 2*batch, 3*batch)
	}
	if _, ok, _ := s.ReadSection(10, 1<<20, 10); ok {
		t.Fatal("a section starting at its bound")
	}
}
