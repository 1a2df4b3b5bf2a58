package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// readAll reads rr to the end: the chunks' concatenation and sizes.
func readAll(t testing.TB, rr *RegionReader) ([]byte, []int) {
	t.Helper()
	var out []byte
	var sizes []int
	for {
		c, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out, sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c...)
		sizes = append(sizes, len(c))
	}
}

// RegionReader gives what Region gives, in chunks of whole batches within
// the chunk size (a larger batch alone); RegionCheck takes them and
// refuses a corrupt byte, a chunk cut inside a batch, batches out of
// order, and a batch reaching the anchor.
func TestRegionReaderAndCheck(t *testing.T) {
	rl := newRegionLeader(t)
	got, sizes := readAll(t, rl.s.RegionReader(rl.start, rl.anchor, 200))
	if !bytes.Equal(got, rl.region) || len(sizes) < 2 {
		t.Fatalf("chunks %v hold %d bytes, Region %d", sizes, len(got), len(rl.region))
	}
	chk := NewRegionCheck(rl.start, rl.anchor)
	for b, i := got, 0; i < len(sizes); i++ {
		c := b[:sizes[i]]
		b = b[sizes[i]:]
		if h, _ := record.ReadBatchHeader(c); sizes[i] > 200 && h.Size() != sizes[i] {
			t.Fatalf("chunk %d of %d bytes holds several batches", i, sizes[i])
		}
		if err := chk.Add(c); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	first, _ := record.ReadBatchHeader(got)
	one := got[:first.Size()]
	for name, tc := range map[string]struct {
		chunks [][]byte
		anchor int64
	}{
		"corrupt byte":    {[][]byte{flip(one, len(one)-1)}, rl.anchor},
		"cut in a batch":  {[][]byte{one[:len(one)-1]}, rl.anchor},
		"out of order":    {[][]byte{one, one}, rl.anchor},
		"reaches anchor":  {[][]byte{one}, first.LastOffset()},
		"below the start": {[][]byte{one}, rl.anchor},
	} {
		start := rl.start
		if name == "below the start" {
			start = first.LastOffset() + 1
		}
		chk := NewRegionCheck(start, tc.anchor)
		var err error
		for _, c := range tc.chunks {
			if err = chk.Add(c); err != nil {
				break
			}
		}
		if !errors.Is(err, ErrRegionChunk) {
			t.Errorf("%s: %v, want ErrRegionChunk", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// writeSpool writes a region into a file of the log's directory, fsynced,
// as a follower's sink does.
func writeSpool(t testing.TB, fs vfs.FS, region []byte) string {
	t.Helper()
	path := filepath.Join(testDir, "spool")
	f, err := fs.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(region, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// A streamed region installs from its spool as the inline one does: the
// follower's copy equals the leader's, a reopen keeps it, no file is
// left; a spool outside the log's directory is refused.
func TestInstallSnapshotRegionFile(t *testing.T) {
	rl := newRegionLeader(t)
	s, l, fs := newStorage(t)
	fill(t, s, 1, 5, 1)
	if err := s.InstallSnapshotRegionFile(rl.meta, rl.start, rl.anchor, "/elsewhere/spool"); err == nil {
		t.Fatal("a spool outside the log's directory was taken")
	}
	path := writeSpool(t, fs, rl.region)
	if err := s.InstallSnapshotRegionFile(rl.meta, rl.start, rl.anchor, path); err != nil {
		t.Fatal(err)
	}
	rl.checkFollower(t, s, l, "live")
	for _, name := range []string{path, testDir + "/" + RegionStreamFile} {
		if _, err := fs.Stat(name); err == nil {
			t.Fatalf("%s is left after the install", name)
		}
	}
	l.Close()
	s2, l2 := openStorage(t, fs)
	defer l2.Close()
	checkContract(t, s2, 36, 1, rl.model[35:])
}

// A power cut at each file operation of a streamed region's install
// leaves, after the reopen, the old log or the leader's copy, and no
// region file.
func TestInstallSnapshotRegionFileCrashAtEveryStep(t *testing.T) {
	rl := newRegionLeader(t)
	crashRegionInstallAtEveryStep(t, rl, RegionStreamFile, func(s *Storage, fsys vfs.FS, mem *memfs.FS) func() error {
		path := writeSpool(t, fsys, rl.region)
		if err := mem.SyncDir(testDir); err != nil {
			t.Fatal(err)
		}
		return func() error { return s.InstallSnapshotRegionFile(rl.meta, rl.start, rl.anchor, path) }
	})
}

// BenchmarkStreamRegion moves a 100 MiB region on the real disk as a
// streamed snapshot does, minus the socket: the leader's RegionReader in
// 4 MiB chunks, each checked (RegionCheck) and appended to a spool, the
// spool fsynced, then InstallSnapshotRegionFile on a fresh follower log
// (fill, fsync). Memory stays a chunk (and the fill's 1 MiB buffer).
func BenchmarkStreamRegion(b *testing.B) {
	const regionBytes = 100 << 20
	dir := b.TempDir()
	cfg := seglog.Config{SegmentBytes: 64 << 20, RetentionMs: -1}
	ll, err := seglog.Open(vfs.Default, filepath.Join(dir, "leader"), cfg, seglog.State{})
	if err != nil {
		b.Fatal(err)
	}
	defer ll.Close()
	batch := clientBatch(b, "region", 16, 1000)
	var data []byte
	for off := int64(0); len(data) < regionBytes; {
		c := append([]byte(nil), batch...)
		h, _ := record.ReadBatchHeader(c)
		record.SetBaseOffset(c, off)
		off += int64(h.NumRecords)
		data = append(data, c...)
		if len(data) >= 4<<20 || len(data)+len(batch) > regionBytes {
			if err := ll.AppendAsFollower(data); err != nil {
				b.Fatal(err)
			}
			data = data[:0]
		}
		if ll.Size() >= regionBytes {
			break
		}
	}
	if err := ll.Flush(); err != nil {
		b.Fatal(err)
	}
	leader := &Storage{log: ll}
	end := ll.EndOffset()
	b.SetBytes(ll.Size())
	b.ResetTimer()
	for i := range b.N {
		fdir := filepath.Join(dir, fmt.Sprintf("f%d", i))
		fl, err := seglog.Open(vfs.Default, fdir, cfg, seglog.State{})
		if err != nil {
			b.Fatal(err)
		}
		fs, err := Open(vfs.Default, fl)
		if err != nil {
			b.Fatal(err)
		}
		spool := filepath.Join(fdir, "spool")
		f, err := vfs.Default.Create(spool)
		if err != nil {
			b.Fatal(err)
		}
		chk := NewRegionCheck(0, end)
		rr := leader.RegionReader(0, end, 4<<20)
		var pos int64
		for {
			c, err := rr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if err := chk.Add(c); err != nil {
				b.Fatal(err)
			}
			if _, err := f.WriteAt(c, pos); err != nil {
				b.Fatal(err)
			}
			pos += int64(len(c))
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := fs.InstallSnapshotRegionFile(partSnapMeta(10, 1, 1, 2, 3), 0, end, spool); err != nil {
			b.Fatal(err)
		}
		if fl.EndOffset() != end {
			b.Fatalf("follower ends at %d, want %d", fl.EndOffset(), end)
		}
		fl.Close()
		b.StopTimer()
		vfs.Default.RemoveAll(fdir)
		b.StartTimer()
	}
}
