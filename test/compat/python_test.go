package compat

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPythonConfluent runs confluent-kafka-python (librdkafka underneath):
// every compression type, delivery reports, headers (repeated and null),
// timestamps, watermarks, offsets by time, and an assign()ed consumer that
// reads everything back. franz-go then reads the same records and checks the
// codec each batch was stored with.
func TestPythonConfluent(t *testing.T) {
	t.Parallel()
	python := requireTool(t, debianPython)
	if r := runClient(t, "", python, "-c", "import confluent_kafka"); r.err != nil {
		missing(t, "python3-confluent-kafka is not importable by "+debianPython+": "+tail(r.stderr, 300))
	}
	addr := startBroker(t)
	topic := uniqueTopic("python")

	s := runScript(t, python, "python/confluent_roundtrip.py", addr, topic)
	if want := []string{"none", "gzip", "snappy", "lz4", "zstd"}; !slices.Equal(s.Codecs, want) {
		t.Errorf("codecs = %v, want %v", s.Codecs, want)
	}
	if s.Produced == 0 || s.Consumed != s.Produced || len(s.Records) != s.Produced {
		t.Fatalf("produced %d, consumed %d, listed %d records", s.Produced, s.Consumed, len(s.Records))
	}
	got := readPartition(t, addr, topic, s.Produced)
	want := slices.Clone(s.Records)
	for i := range want {
		want[i].Codec = ""
	}
	compareRecords(t, got, want)

	// Each codec's records are stored in batches compressed with it.
	for _, codec := range s.Codecs {
		t.Run("stored-compressed-"+codec, func(t *testing.T) {
			var g []*kgo.Record
			var w []record
			for i, r := range s.Records {
				if r.Codec == codec {
					g, w = append(g, got[i]), append(w, r)
				}
			}
			if len(w) == 0 {
				t.Fatalf("the script produced no %s records", codec)
			}
			compareRecords(t, g, w)
		})
	}
}

// TestPythonConfluentAdmin drives confluent-kafka-python's AdminClient on
// the configs of issue 15 items 11 and 12 (python/confluent_admin.py): a
// topic created with message.format.version, a dynamic broker config set
// and read back with its source, a static one refused by name.
func TestPythonConfluentAdmin(t *testing.T) {
	t.Parallel()
	python := requireTool(t, debianPython)
	if r := runClient(t, "", python, "-c", "import confluent_kafka"); r.err != nil {
		missing(t, "python3-confluent-kafka is not importable by "+debianPython+": "+tail(r.stderr, 300))
	}
	addr := startBroker(t)
	runScript(t, python, "python/confluent_admin.py", addr, uniqueTopic("python-admin"))
}

// TestPythonConfluentTxn runs confluent-kafka-python's transactional
// producer (python/confluent_txn.py): a committed and an aborted
// transaction over two partitions, then consume-transform-produce with
// send_offsets_to_transaction; read_committed consumers see only committed
// records, read_uncommitted ones all, and the group's offsets are those
// the transaction committed.
func TestPythonConfluentTxn(t *testing.T) {
	t.Parallel()
	skipWithoutGroups(t)
	python := requireTool(t, debianPython)
	if r := runClient(t, "", python, "-c", "import confluent_kafka"); r.err != nil {
		missing(t, "python3-confluent-kafka is not importable by "+debianPython+": "+tail(r.stderr, 300))
	}
	addr := startBroker(t)
	s := runScript(t, python, "python/confluent_txn.py", addr, uniqueTopic("python-txn"))
	if s.Produced == 0 || s.Consumed != s.Produced*2/3 {
		t.Fatalf("produced %d, read_committed %d", s.Produced, s.Consumed)
	}
}
