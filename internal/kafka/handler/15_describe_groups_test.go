package handler

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupAdmin runs the group administration a console or CLI does
// through kadm: list (with state and type filters), describe, lag, commit
// and fetch offsets from outside the group, delete offsets, delete groups,
// and the cleanup of offsets of a deleted topic.
func TestGroupAdmin(t *testing.T) {
	b := startBroker(t, "", nil)
	adm := b.admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admCreate(t, adm, "admin-a", 2, nil)
	admCreate(t, adm, "admin-b", 1, nil)
	groupProduce(t, b, "admin-a", "x", 100)

	// An active consumer group on admin-a.
	cl := b.client(t, kgo.ConsumerGroup("active"), kgo.ConsumeTopics("admin-a"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond), kgo.DisableAutoCommit())
	got := 0
	for got < 50 {
		fs := cl.PollRecords(ctx, 50-got)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d", got)
		}
		if err := cl.CommitRecords(ctx, fs.Records()...); err != nil {
			t.Fatal(err)
		}
		got += len(fs.Records())
	}

	// A group that only commits (from outside group management).
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "admin-a", Partition: 0, At: 7, LeaderEpoch: 3, Metadata: "from admin"})
	os.Add(kadm.Offset{Topic: "admin-b", Partition: 0, At: 9, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(ctx, "simple", os)
	if err != nil || cr.Error() != nil {
		t.Fatalf("commit: %v %v", err, cr.Error())
	}
	fo, err := adm.FetchOffsets(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fo.Lookup("admin-a", 0); o.At != 7 || o.LeaderEpoch != 3 || o.Metadata != "from admin" {
		t.Errorf("fetched %+v", o)
	}

	// ListGroups, with filters.
	lg, err := adm.ListGroups(ctx)
	if err != nil || len(lg) != 2 || lg["active"].State != "Stable" || lg["active"].ProtocolType != "consumer" ||
		lg["simple"].State != "Empty" || lg["simple"].ProtocolType != "" {
		t.Fatalf("list: %+v %v", lg, err)
	}
	if lg, _ := adm.ListGroups(ctx, "empty"); len(lg) != 1 || lg["simple"].Group != "simple" {
		t.Errorf("list Empty (any case): %+v", lg)
	}
	if lg, _ := adm.ListGroupsByType(ctx, []string{"consumer"}); len(lg) != 0 {
		t.Errorf("list KIP-848 groups: %+v", lg)
	}

	// DescribeGroups: the member, its assignment, and a group that does not
	// exist (Dead, no error, up to v5).
	dg, err := adm.DescribeGroups(ctx, "active", "simple", "missing")
	if err != nil {
		t.Fatal(err)
	}
	a := dg["active"]
	if a.State != "Stable" || a.Protocol != "cooperative-sticky" || len(a.Members) != 1 || a.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe active: %+v", a)
	}
	if ca, ok := a.Members[0].Assigned.AsConsumer(); !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != 2 {
		t.Errorf("active's assignment: %+v", a.Members[0].Assigned)
	}
	if m := dg["missing"]; m.Err != nil || m.State != "Dead" {
		t.Errorf("describe missing: %+v", m)
	}

	// Lag: high watermark minus committed, per partition.
	lags, err := adm.Lag(ctx, "active")
	if err != nil || lags.Error() != nil {
		t.Fatalf("lag: %v %v", err, lags.Error())
	}
	var total int64
	for _, ps := range lags["active"].Lag {
		for _, l := range ps {
			total += l.Lag
		}
	}
	if total != 50 {
		t.Errorf("lag of active: %d, want 50", total)
	}
	// The coordinator's own view (for the console) agrees for every
	// committed partition.
	lag, err := b.Groups.Lag("active").Wait(ctx)
	if err != nil || len(lag) == 0 {
		t.Fatalf("coordinator lag: %+v %v", lag, err)
	}
	for _, pl := range lag {
		kl, _ := lags["active"].Lag.Lookup(pl.Topic, pl.Partition)
		if pl.Lag != kl.Lag || pl.HighWatermark != kl.End.Offset || pl.Committed != kl.Commit.At {
			t.Errorf("coordinator lag %+v, kadm %+v", pl, kl)
		}
	}

	// OffsetDelete: refused for the topic the active group consumes,
	// allowed for a group without members.
	do, err := adm.DeleteOffsets(ctx, "active", kadm.TopicsSet{"admin-a": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := do["admin-a"][0]; e != kerr.GroupSubscribedToTopic {
		t.Errorf("delete offsets of a consumed topic: %v", e)
	}
	do, err = adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{"admin-b": {0: {}}})
	if err != nil || do.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, do.Error())
	}
	fo, _ = adm.FetchOffsets(ctx, "simple")
	if _, ok := fo.Lookup("admin-b", 0); ok {
		t.Errorf("admin-b offset still there: %+v", fo)
	}

	// DeleteGroups: non-empty, missing, empty.
	dr, err := adm.DeleteGroups(ctx, "active", "missing", "simple")
	if err != nil {
		t.Fatal(err)
	}
	if dr["active"].Err != kerr.NonEmptyGroup || dr["missing"].Err != kerr.GroupIDNotFound || dr["simple"].Err != nil {
		t.Errorf("delete groups: %+v", dr)
	}
	if lg, _ := adm.ListGroups(ctx); len(lg) != 1 {
		t.Errorf("after deleting simple: %+v", lg)
	}

	// Deleting a topic drops every group's offsets of it: the deletion is
	// queued on the groups before DeleteTopics answers, and a fetch sees
	// every change queued before it.
	cl.Close()
	if _, err := adm.DeleteTopics(ctx, "admin-a"); err != nil {
		t.Fatal(err)
	}
	if fo, err := adm.FetchOffsets(ctx, "active"); err != nil || len(fo) != 0 {
		t.Fatalf("offsets of a deleted topic remain: %+v %v", fo, err)
	}

	// Raw: DescribeGroups of the empty group id, and authorized operations.
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version, req.Groups, req.IncludeAuthorizedOperations = 5, []string{"", "active"}, true
	resp := admRaw[*kmsg.DescribeGroupsResponse](t, b.client(t), req)
	if resp.Groups[0].ErrorCode != kerr.InvalidGroupID.Code || resp.Groups[1].ErrorCode != 0 || resp.Groups[1].AuthorizedOperations == -2147483648 {
		t.Errorf("describe raw: %+v", resp.Groups)
	}
	dreq := kmsg.NewPtrDeleteGroupsRequest()
	dreq.Groups = []string{""}
	if dresp := admRaw[*kmsg.DeleteGroupsResponse](t, b.client(t), dreq); dresp.Groups[0].ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("delete the empty group id: %+v", dresp.Groups)
	}
	oreq := kmsg.NewPtrOffsetDeleteRequest()
	oreq.Group = "active"
	ot := kmsg.NewOffsetDeleteRequestTopic()
	ot.Topic = "gone"
	ot.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	oreq.Topics = append(oreq.Topics, ot)
	if oresp := admRaw[*kmsg.OffsetDeleteResponse](t, b.client(t), oreq); oresp.ErrorCode != 0 || oresp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("offset delete of an unknown topic: %+v", oresp)
	}
}
