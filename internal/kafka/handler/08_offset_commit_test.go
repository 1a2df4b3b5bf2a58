package handler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// dpCommit commits offset for topic partition p at the given version, as
// generation -1 unless gen/member are given.
func dpCommit(dc *dpConn, version int16, group string, gen int32, member, topic string, p int32, offset int64, epoch int32, meta *string) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.MemberID = version, group, gen, member
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p, offset, epoch, meta
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dpDo[*kmsg.OffsetCommitResponse](dc, req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		dc.t.Fatalf("commit v%d: %+v", version, resp)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// dpFetchOffset reads one committed offset with OffsetFetch at version.
func dpFetchOffset(dc *dpConn, version int16, group, topic string, p int32) kmsg.OffsetFetchResponseTopicPartition {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = version, group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{p}
	req.Topics = append(req.Topics, rt)
	resp := dpDo[*kmsg.OffsetFetchResponse](dc, req)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		dc.t.Fatalf("fetch v%d: %+v", version, resp)
	}
	return resp.Topics[0].Partitions[0]
}

// TestOffsetCommitFetchVersions commits and reads back at every version
// from 0: kafka-node's OffsetCommit v0 (no generation) and OffsetFetch
// v0/v1, the committed leader epoch (v6 commit, v5 fetch), metadata
// round-tripped (null stored as ""), and the errors Kafka gives.
func TestOffsetCommitFetchVersions(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "oc", 3, nil)
	dc := dpDial(t, b.Addr)
	for v := int16(0); v <= 9; v++ {
		meta := kmsg.StringPtr("meta-" + strings.Repeat("ü", int(v)))
		if v == 3 {
			meta = nil
		}
		epoch := int32(-1)
		if v >= 6 {
			epoch = int32(10 + v)
		}
		if code := dpCommit(dc, v, "g-versions", -1, "", "oc", int32(v%3), int64(100+v), epoch, meta); code != 0 {
			t.Fatalf("commit v%d: %v", v, kerr.ErrorForCode(code))
		}
		for fv := int16(0); fv <= 7; fv++ {
			got := dpFetchOffset(dc, fv, "g-versions", "oc", int32(v%3))
			wantMeta := ""
			if meta != nil {
				wantMeta = *meta
			}
			if got.ErrorCode != 0 || got.Offset != int64(100+v) || got.Metadata == nil || *got.Metadata != wantMeta {
				t.Errorf("commit v%d, fetch v%d: %+v (want offset %d metadata %q)", v, fv, got, 100+v, wantMeta)
			}
			wantEpoch := int32(-1)
			if fv >= 5 {
				wantEpoch = epoch
			}
			if fv >= 5 && got.LeaderEpoch != wantEpoch {
				t.Errorf("commit v%d, fetch v%d: leader epoch %d, want %d", v, fv, got.LeaderEpoch, wantEpoch)
			}
		}
	}

	// A group that does not exist: -1, no error, at every version.
	for fv := int16(0); fv <= 7; fv++ {
		if got := dpFetchOffset(dc, fv, "never-committed", "oc", 0); got.Offset != -1 || got.ErrorCode != 0 {
			t.Errorf("unknown group, fetch v%d: %+v", fv, got)
		}
	}

	// Errors: unknown topic and partition, empty group id, a member commit
	// to a group that does not exist, metadata too large.
	for _, c := range []struct {
		what    string
		version int16
		group   string
		gen     int32
		member  string
		topic   string
		p       int32
		meta    *string
		want    *kerr.Error
	}{
		{"unknown topic", 2, "g", -1, "", "no-such-topic", 0, nil, kerr.UnknownTopicOrPartition},
		{"partition past the count", 2, "g", -1, "", "oc", 3, nil, kerr.UnknownTopicOrPartition},
		{"negative partition", 2, "g", -1, "", "oc", -1, nil, kerr.UnknownTopicOrPartition},
		{"empty group id", 2, "", -1, "", "oc", 0, nil, kerr.InvalidGroupID},
		{"member commit to no group (v8)", 8, "nope", 3, "m", "oc", 0, nil, kerr.IllegalGeneration},
		{"member commit to no group (v9)", 9, "nope", 3, "m", "oc", 0, nil, kerr.GroupIDNotFound},
		{"metadata too large", 5, "g", -1, "", "oc", 0, kmsg.StringPtr(strings.Repeat("m", 4097)), kerr.OffsetMetadataTooLarge},
		{"too long group id", 9, strings.Repeat("g", 40000), -1, "", "oc", 0, nil, kerr.InvalidGroupID},
	} {
		if code := dpCommit(dc, c.version, c.group, c.gen, c.member, c.topic, c.p, 1, -1, c.meta); code != c.want.Code {
			t.Errorf("%s: %v, want %v", c.what, kerr.ErrorForCode(code), c.want)
		}
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 5, ""
	if resp := dpDo[*kmsg.OffsetFetchResponse](dc, req); resp.ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("fetch of the empty group id: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	// OffsetFetch v8: several groups, null topics for everything.
	req = kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	for _, g := range []string{"g-versions", "never-committed", ""} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		req.Groups = append(req.Groups, rg)
	}
	resp := dpDo[*kmsg.OffsetFetchResponse](dc, req)
	if len(resp.Groups) != 3 {
		t.Fatalf("v8: %d groups", len(resp.Groups))
	}
	n := 0
	for _, tp := range resp.Groups[0].Topics {
		n += len(tp.Partitions)
	}
	if resp.Groups[0].ErrorCode != 0 || n != 3 {
		t.Errorf("v8 g-versions: %+v", resp.Groups[0])
	}
	if resp.Groups[1].ErrorCode != 0 || len(resp.Groups[1].Topics) != 0 {
		t.Errorf("v8 unknown group: %+v", resp.Groups[1])
	}
	if resp.Groups[2].ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("v8 empty group id: %+v", resp.Groups[2])
	}
}

// TestOffsetsSurviveRestart: a group commits, the broker restarts on the
// same address, and a consumer that stayed connected carries on, then a
// new consumer of the same group resumes where the group left off: every
// record consumed once, no committed offset lost or moved backwards.
func TestOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	props := map[string]string{"group.min.session.timeout.ms": "1000"}
	b := startBroker(t, dir, props)
	addr := b.Addr
	admCreate(t, b.admin(t), "restart", 4, nil)
	groupProduce(t, b, "restart", "a", 400)

	l := newLedger()
	m := startMember(t, b, "live", "g-restart", "restart", l, kgo.RangeBalancer())
	l.waitFor(t, 400, "before the restart")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := b.admin(t).FetchOffsets(ctx, "g-restart")
	if err != nil {
		t.Fatal(err)
	}

	b.Stop(t)
	b = startBrokerAt(t, dir, addr, props)
	after, err := b.admin(t).FetchOffsets(ctx, "g-restart")
	if err != nil {
		t.Fatal(err)
	}
	before.Each(func(o kadm.OffsetResponse) {
		if a, ok := after.Lookup(o.Topic, o.Partition); !ok || a.At != o.At || a.Err != nil {
			t.Errorf("%s-%d: committed %d before the restart, %+v after", o.Topic, o.Partition, o.At, a)
		}
	})
	// The group came back Stable, in its generation.
	dg, err := b.admin(t).DescribeGroups(ctx, "g-restart")
	if err != nil || dg["g-restart"].State != "Stable" || len(dg["g-restart"].Members) != 1 {
		t.Fatalf("after the restart: %+v %v", dg["g-restart"], err)
	}

	// The live consumer goes on over the restart.
	groupProduce(t, b, "restart", "b", 400)
	l.waitFor(t, 800, "after the restart")
	m.stop()

	// A new consumer of the group starts from what was committed.
	groupProduce(t, b, "restart", "c", 200)
	m2 := startMember(t, b, "resumed", "g-restart", "restart", l, kgo.CooperativeStickyBalancer())
	l.waitFor(t, 1000, "resumed")
	m2.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, who := range l.processed {
		if len(who) != 1 {
			t.Errorf("record %s processed by %v", k, who)
		}
	}
	if len(l.failed) > 0 {
		t.Errorf("failed commits: %v", l.failed)
	}
}
