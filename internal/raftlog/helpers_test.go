package raftlog

import (
	"bytes"
	"fmt"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// testCfg rolls a segment every ~600 bytes, so a few entries cross one.
var testCfg = seglog.Config{SegmentBytes: 600, IndexIntervalBytes: 64, RetentionMs: -1}

const testDir = "/p/t-0"

// clientBatch is a client batch of n records whose values carry tag.
func clientBatch(t testing.TB, tag string, n, valueSize int) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		v := bytes.Repeat([]byte{'x'}, valueSize)
		copy(v, fmt.Sprintf("%s-%d", tag, i))
		recs[i] = record.Record{OffsetDelta: int32(i), Value: v}
	}
	b, err := record.AppendBatch(nil, record.BatchSpec{PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, BaseTimestamp: 1000}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func normal(index, term uint64, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: raftpb.EntryNormal.Enum(), Data: data}
}

func typed(index, term uint64, typ raftpb.EntryType, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: typ.Enum(), Data: data}
}

func openLog(t testing.TB, fs vfs.FS) *seglog.Log {
	t.Helper()
	l, err := seglog.Open(fs, testDir, testCfg, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func openStorage(t testing.TB, fs vfs.FS) (*Storage, *seglog.Log) {
	t.Helper()
	l := openLog(t, fs)
	s, err := Open(fs, l)
	if err != nil {
		t.Fatal(err)
	}
	return s, l
}

func newStorage(t testing.TB) (*Storage, *seglog.Log, *memfs.FS) {
	t.Helper()
	fs := memfs.New()
	if err := fs.MkdirAll("/p"); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	s, l := openStorage(t, fs)
	t.Cleanup(func() { l.Close() })
	return s, l, fs
}

// sameEntry reports whether got stores want: same index, term and type;
// for a client batch the same records (base offset and epoch differ), for
// others the same Data.
func sameEntry(t testing.TB, got, want *raftpb.Entry) error {
	t.Helper()
	if got.GetIndex() != want.GetIndex() || got.GetTerm() != want.GetTerm() || got.GetType() != want.GetType() {
		return fmt.Errorf("entry %d/%d/%v, want %d/%d/%v", got.GetIndex(), got.GetTerm(), got.GetType(), want.GetIndex(), want.GetTerm(), want.GetType())
	}
	if want.GetType() == raftpb.EntryNormal && len(want.GetData()) > 0 {
		_, g, err := record.Records(got.GetData(), 1<<20)
		if err != nil {
			return err
		}
		_, w, err := record.Records(want.GetData(), 1<<20)
		if err != nil {
			return err
		}
		if len(g) != len(w) {
			return fmt.Errorf("entry %d: %d records, want %d", got.GetIndex(), len(g), len(w))
		}
		for i := range g {
			if !bytes.Equal(g[i].Value, w[i].Value) {
				return fmt.Errorf("entry %d record %d: %q, want %q", got.GetIndex(), i, g[i].Value, w[i].Value)
			}
		}
		h, _ := record.ReadBatchHeader(got.GetData())
		if uint64(h.PartitionLeaderEpoch) != want.GetTerm() {
			return fmt.Errorf("entry %d: batch epoch %d, term %d", got.GetIndex(), h.PartitionLeaderEpoch, want.GetTerm())
		}
		return nil
	}
	if !bytes.Equal(got.GetData(), want.GetData()) {
		return fmt.Errorf("entry %d: data %q, want %q", got.GetIndex(), got.GetData(), want.GetData())
	}
	return nil
}

// memfsDropUnsynced loses every unsynced byte at a crash.
var memfsDropUnsynced = memfs.CrashOptions{}
