package logdir

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseMeta feeds arbitrary bytes to the meta.properties reader, which
// every start runs on a file anyone may have edited: it never panics, and
// what it accepts is a valid identity that writes back the same.
func FuzzParseMeta(f *testing.F) {
	f.Add([]byte("#\ncluster.id=D2q7y9wFa23o9aulBUyRdA\ndirectory.id=LZidnrsX1FqzNfDJkCTwhg\nnode.id=1\nversion=1\n"))
	f.Add([]byte("version=0\ncluster.id=x\nnode.id=1\n"))
	f.Add([]byte("version=1\ncluster.id=D2q7y9wFa23o9aulBUyRdA\nnode.id=-1\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMeta(b)
		if err != nil {
			return
		}
		if CheckUUID(m.ClusterID) != nil || m.NodeID < 0 {
			t.Fatalf("accepted %+v from %q", m, b)
		}
		again, err := parseMeta([]byte("cluster.id=" + m.ClusterID + "\nnode.id=" + itoa(m.NodeID) + "\nversion=1\n"))
		if err != nil || again.ClusterID != m.ClusterID || again.NodeID != m.NodeID {
			t.Fatalf("round trip of %+v: %+v %v", m, again, err)
		}
	})
}

// FuzzParsePartitionMetadata feeds arbitrary text to the partition.metadata
// reader: it never panics, and an id it accepts is written back the same.
func FuzzParsePartitionMetadata(f *testing.F) {
	f.Add("version: 0\ntopic_id: AAECAwQFBgcICQoLDA0ODw\n")
	f.Add("version: 1\ntopic_id: AAECAwQFBgcICQoLDA0ODw\n")
	f.Add("topic_id:\n")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parsePartitionMetadata(s)
		if !ok {
			return
		}
		if !strings.Contains(s, "topic_id") {
			t.Fatalf("accepted %q without a topic_id", s)
		}
		if again, ok := parsePartitionMetadata(partitionMetadata(id)); !ok || again != id {
			t.Fatalf("round trip of %x: %x %v", id, again, ok)
		}
	})
}

func itoa(n int32) string {
	return strconv.Itoa(int(n))
}
