package cli

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactions: list and describe show an open transaction, and abort
// by its start offset ends it on its partition (the last stable offset
// moves to the end).
func TestTransactions(t *testing.T) {
	c := startStrom(t)
	ctx := context.Background()
	c.ok(t, nil, "topic", "create", "tt", "-p", "1")
	p := c.client(t, kgo.TransactionalID("cli-tx"), kgo.DefaultProduceTopic("tt"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, kgo.StringRecord("open")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	list := c.ok(t, nil, "transactions", "list")
	if !strings.Contains(list, "cli-tx") || !strings.Contains(list, "Ongoing") {
		t.Fatalf("list:\n%s", list)
	}
	if out := c.ok(t, nil, "transactions", "list", "--state", "CompleteCommit"); strings.Contains(out, "cli-tx") {
		t.Fatalf("list --state CompleteCommit:\n%s", out)
	}
	var descs []txnDescription
	if err := json.Unmarshal([]byte(c.ok(t, nil, "transactions", "describe", "cli-tx", "--output", "json")), &descs); err != nil {
		t.Fatal(err)
	}
	if len(descs) != 1 || descs[0].State != "Ongoing" || strings.Join(descs[0].Partitions, ",") != "tt-0" || descs[0].StartTimeMs <= 0 {
		t.Fatalf("describe: %+v", descs)
	}
	prods := c.ok(t, nil, "transactions", "describe-producers", "--topic", "tt")
	if want := strconv.FormatInt(descs[0].ProducerID, 10); !strings.Contains(prods, want) || !strings.Contains(prods, "TXN-START-OFFSET") {
		t.Fatalf("describe-producers:\n%s", prods)
	}
	c.fails(t, nil, "strom: give either --start-offset or --producer-id (with --producer-epoch)\n", "transactions", "abort", "--topic", "tt", "--partition", "0")
	c.fails(t, nil, "strom: tt-0: 0 open transactions start at offset 5 — \"strom transactions describe-producers --topic tt --partition 0\" shows where open transactions start\n", "transactions", "abort", "--topic", "tt", "--partition", "0", "--start-offset", "5")
	out := c.ok(t, nil, "transactions", "abort", "--topic", "tt", "--partition", "0", "--start-offset", "0")
	if !strings.Contains(out, "aborted the transaction of producer "+strconv.FormatInt(descs[0].ProducerID, 10)) {
		t.Fatalf("abort: %s", out)
	}
	lso, err := c.admin(t).ListCommittedOffsets(ctx, "tt")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup("tt", 0); o.Offset != 2 { // the record and the marker
		t.Fatalf("last stable offset after the abort: %+v", o)
	}
}
