package replica

import (
	"encoding/binary"
	"testing"

	"github.com/stromhq/strom/internal/record"
)

// TestParseStartMoveAllocatesNothingForOtherEntries: a start move parses
// back to its offset; a transaction marker (a control batch of one record
// too) and a client batch are not start moves, and telling so costs no
// allocation: parseStartMove runs on every committed entry, twice (the
// early high watermark, then the apply), and decoded every marker's
// records before it looked at the length.
func TestParseStartMoveAllocatesNothingForOtherEntries(t *testing.T) {
	for _, off := range []int64{0, 1, 1 << 40} {
		b, err := startMoveBatch(off)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := parseStartMove(b); !ok || got != off {
			t.Fatalf("start move to %d parsed as %d, %v", off, got, ok)
		}
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), 1) // COMMIT
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), 7) // coordinator epoch
	marker, err := record.AppendBatch(nil, record.BatchSpec{PartitionLeaderEpoch: -1, Transactional: true, Control: true,
		ProducerID: 9, ProducerEpoch: 1, BaseSequence: -1}, []record.Record{{Key: key, Value: val}})
	if err != nil {
		t.Fatal(err)
	}
	data := batch(t, 7, 0, 1, "v")
	for name, b := range map[string][]byte{"marker": marker, "client batch": data} {
		if _, ok := parseStartMove(b); ok {
			t.Fatalf("a %s parsed as a start move", name)
		}
		if n := testing.AllocsPerRun(100, func() { parseStartMove(b) }); n != 0 {
			t.Fatalf("%v allocations to tell a %s from a start move", n, name)
		}
	}
}
