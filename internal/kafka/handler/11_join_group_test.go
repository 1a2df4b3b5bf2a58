package handler

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupProduce writes n records with values "<prefix>-<i>" to topic, spread
// over its partitions by key.
func groupProduce(t *testing.T, b *testBroker, topic, prefix string, n int) {
	t.Helper()
	cl := b.client(t, kgo.DefaultProduceTopic(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestJoinGroupSmoke(t *testing.T) {
	b := startBroker(t, "", nil)
	admCreate(t, b.admin(t), "smoke", 3, nil)
	groupProduce(t, b, "smoke", "v", 30)
	cl := b.client(t, kgo.ConsumerGroup("g-smoke"), kgo.ConsumeTopics("smoke"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := 0
	for got < 30 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 30", got)
		}
		fs.EachError(func(s string, p int32, err error) { t.Fatalf("%s %d: %v", s, p, err) })
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	adm := b.admin(t)
	offs, err := adm.FetchOffsets(ctx, "g-smoke")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != 30 {
		t.Fatalf("committed %d", sum)
	}
}

func dpJoin(version int16, group, member string, instance *string, protocols ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID, req.InstanceID = version, group, member, instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.ProtocolType = "consumer"
	for _, p := range protocols {
		rp := kmsg.NewJoinGroupRequestProtocol()
		rp.Name, rp.Metadata = p, []byte("meta-"+p)
		req.Protocols = append(req.Protocols, rp)
	}
	return req
}

func dpSync(version int16, group, member string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, group, member, gen
	for m, a := range assign {
		ra := kmsg.NewSyncGroupRequestGroupAssignment()
		ra.MemberID, ra.MemberAssignment = m, []byte(a)
		req.GroupAssignment = append(req.GroupAssignment, ra)
	}
	return req
}

func dpHeartbeat(version int16, group, member string, gen int32) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, group, member, gen
	return req
}

// TestJoinSyncRaw drives the classic protocol by hand at the versions old
// clients use (kafka-node and kafka-go send v0), and checks what the
// newer versions add.
func TestJoinSyncRaw(t *testing.T) {
	b := startBroker(t, "", nil)
	dc := dpDial(t, b.Addr)

	// v0: no MEMBER_ID_REQUIRED step, rebalance timeout = session timeout.
	j := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(0, "raw", "", nil, "range"))
	if j.ErrorCode != 0 || j.Generation != 1 || j.LeaderID != j.MemberID || len(j.Members) != 1 || *j.Protocol != "range" {
		t.Fatalf("join v0: %+v", j)
	}
	if !strings.HasPrefix(j.MemberID, "dp-test-") {
		t.Errorf("member id %q: want the client id and a UUID", j.MemberID)
	}
	s := dpDo[*kmsg.SyncGroupResponse](dc, dpSync(0, "raw", j.MemberID, 1, map[string]string{j.MemberID: "mine"}))
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "mine" {
		t.Fatalf("sync v0: %+v", s)
	}
	if hb := dpDo[*kmsg.HeartbeatResponse](dc, dpHeartbeat(0, "raw", j.MemberID, 1)); hb.ErrorCode != 0 {
		t.Fatalf("heartbeat v0: %v", kerr.ErrorForCode(hb.ErrorCode))
	}

	// v4+: a new member gets an id with MEMBER_ID_REQUIRED.
	j4 := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(7, "raw", "", nil, "range"))
	if j4.ErrorCode != kerr.MemberIDRequired.Code || j4.MemberID == "" || j4.Generation != -1 {
		t.Fatalf("join v7 without id: %+v", j4)
	}

	// The rebalance answer waits, in order, while the reader goes on: on
	// a second connection the new member joins (pending), then the first
	// member's rejoin is pipelined behind it on the same connection and
	// completes the join phase. A reader blocked on the first join would
	// never read the second.
	dc2 := dpDial(t, b.Addr)
	rNew := dpJoin(7, "raw", j4.MemberID, nil, "range")
	cNew := dc2.send(rNew)
	rOld := dpJoin(0, "raw", j.MemberID, nil, "range")
	cOld := dc2.send(rOld)
	newResp := dc2.read(rNew, cNew).(*kmsg.JoinGroupResponse)
	oldResp := dc2.read(rOld, cOld).(*kmsg.JoinGroupResponse)
	if newResp.ErrorCode != 0 || newResp.Generation != 2 || len(newResp.Members) != 0 || *newResp.ProtocolType != "consumer" {
		t.Fatalf("new member: %+v", newResp)
	}
	if oldResp.ErrorCode != 0 || oldResp.Generation != 2 || oldResp.LeaderID != j.MemberID || len(oldResp.Members) != 2 {
		t.Fatalf("old member (leader): %+v", oldResp)
	}

	// SyncGroup v5 checks the protocol type and name.
	bad := dpSync(5, "raw", j4.MemberID, 2, nil)
	bad.ProtocolType, bad.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("roundrobin")
	if s := dpDo[*kmsg.SyncGroupResponse](dc2, bad); s.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("sync v5 with another protocol: %v", kerr.ErrorForCode(s.ErrorCode))
	}
	// A follower's SyncGroup waits for the leader's.
	fol := dpSync(5, "raw", j4.MemberID, 2, nil)
	fol.ProtocolType, fol.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	cFol := dc2.send(fol)
	lead := dpDo[*kmsg.SyncGroupResponse](dc, dpSync(3, "raw", j.MemberID, 2, map[string]string{j.MemberID: "L", j4.MemberID: "F"}))
	folResp := dc2.read(fol, cFol).(*kmsg.SyncGroupResponse)
	if lead.ErrorCode != 0 || string(lead.MemberAssignment) != "L" || folResp.ErrorCode != 0 || string(folResp.MemberAssignment) != "F" || *folResp.Protocol != "range" {
		t.Fatalf("sync: leader %+v follower %+v", lead, folResp)
	}

	// Errors, as Kafka answers them.
	for _, c := range []struct {
		what string
		req  kmsg.Request
		want *kerr.Error
	}{
		{"join: empty group id", dpJoin(5, "", "", nil, "range"), kerr.InvalidGroupID},
		{"join: unknown member", dpJoin(5, "raw", "nobody", nil, "range"), kerr.UnknownMemberID},
		{"join: no protocol in common", dpJoin(5, "raw", "", nil, "roundrobin"), kerr.InconsistentGroupProtocol},
		{"heartbeat: old generation", dpHeartbeat(4, "raw", j.MemberID, 1), kerr.IllegalGeneration},
		{"heartbeat: unknown member", dpHeartbeat(4, "raw", "nobody", 2), kerr.UnknownMemberID},
		{"heartbeat: unknown group", dpHeartbeat(4, "no-group", "m", 1), kerr.UnknownMemberID},
		{"heartbeat: empty group id", dpHeartbeat(4, "", "m", 1), kerr.InvalidGroupID},
		{"sync: unknown group", dpSync(4, "no-group", "m", 1, nil), kerr.UnknownMemberID},
		{"sync: old generation", dpSync(4, "raw", j.MemberID, 1, nil), kerr.IllegalGeneration},
	} {
		var code int16
		switch r := dpDo[kmsg.Response](dc, c.req).(type) {
		case *kmsg.JoinGroupResponse:
			code = r.ErrorCode
		case *kmsg.HeartbeatResponse:
			code = r.ErrorCode
		case *kmsg.SyncGroupResponse:
			code = r.ErrorCode
		}
		if code != c.want.Code {
			t.Errorf("%s: %v, want %v", c.what, kerr.ErrorForCode(code), c.want)
		}
	}
	short := dpJoin(5, "raw", "", nil, "range")
	short.SessionTimeoutMillis = 100
	if r := dpDo[*kmsg.JoinGroupResponse](dc, short); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Errorf("join with a 100ms session: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// Static members (v5): a restarted instance gets a new id without a
	// rebalance; the old id is fenced.
	inst := kmsg.StringPtr("instance-1")
	sj := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(5, "static", "", inst, "range"))
	if sj.ErrorCode != 0 || sj.Generation != 1 {
		t.Fatalf("static join: %+v", sj)
	}
	ss := dpSync(5, "static", sj.MemberID, 1, map[string]string{sj.MemberID: "S"})
	ss.InstanceID = inst
	if r := dpDo[*kmsg.SyncGroupResponse](dc, ss); r.ErrorCode != 0 {
		t.Fatalf("static sync: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	sj2 := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(5, "static", "", inst, "range"))
	if sj2.ErrorCode != 0 || sj2.Generation != 1 || sj2.MemberID == sj.MemberID {
		t.Fatalf("static rejoin: %+v", sj2)
	}
	hb := dpHeartbeat(4, "static", sj.MemberID, 1)
	hb.InstanceID = inst
	if r := dpDo[*kmsg.HeartbeatResponse](dc, hb); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Errorf("heartbeat of the replaced static member: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestStaticMembersKgo: franz-go static members (group.instance.id). A
// member that restarts within its session comes back with its partitions
// and the other member sees no rebalance at all (KIP-345).
func TestStaticMembersKgo(t *testing.T) {
	b := startBroker(t, "", map[string]string{"group.min.session.timeout.ms": "1000"})
	admCreate(t, b.admin(t), "static", 4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var revokedA, assignedA atomic.Int32
	newMember := func(instance string, extra ...kgo.Opt) *kgo.Client {
		opts := append([]kgo.Opt{
			kgo.ConsumerGroup("g-static"), kgo.ConsumeTopics("static"), kgo.InstanceID(instance),
			kgo.SessionTimeout(10 * time.Second), kgo.HeartbeatInterval(100 * time.Millisecond),
			kgo.FetchMaxWait(100 * time.Millisecond), kgo.Balancers(kgo.RangeBalancer()),
		}, extra...)
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	a := newMember("static-a",
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { assignedA.Add(1) }),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { revokedA.Add(1) }))
	defer a.Close()
	bcl := newMember("static-b")
	adm := b.admin(t)
	waitMembers := func(n int) kadm.DescribedGroup {
		for {
			dg, err := adm.DescribeGroups(ctx, "g-static")
			if err != nil {
				t.Fatal(err)
			}
			g := dg["g-static"]
			if g.State == "Stable" && len(g.Members) == n {
				all := true
				for _, m := range g.Members {
					ca, _ := m.Assigned.AsConsumer()
					all = all && ca != nil && len(ca.Topics) == 1 && len(ca.Topics[0].Partitions) == 4/n
				}
				if all {
					return g
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("group never settled with %d members: %+v", n, g)
			}
			pause(ctx)
		}
	}
	before := waitMembers(2)
	assignedBefore, revokedBefore := assignedA.Load(), revokedA.Load()

	// b restarts: a static member's Close does not leave the group.
	bcl.Close()
	bcl = newMember("static-b")
	defer bcl.Close()
	for {
		dg, err := adm.DescribeGroups(ctx, "g-static")
		if err != nil {
			t.Fatal(err)
		}
		g := dg["g-static"]
		var ids []string
		for _, m := range g.Members {
			ids = append(ids, m.MemberID)
		}
		changed := false
		for i, m := range g.Members {
			if *m.InstanceID == "static-b" && m.MemberID != before.Members[i].MemberID {
				changed = true
			}
		}
		if changed {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("b never came back with a new member id: %v", ids)
		}
		pause(ctx)
	}
	after := waitMembers(2)
	if revokedA.Load() != revokedBefore || assignedA.Load() != assignedBefore {
		t.Errorf("a saw a rebalance: assigned %d->%d, revoked %d->%d", assignedBefore, assignedA.Load(), revokedBefore, revokedA.Load())
	}
	for i := range after.Members {
		ab, _ := before.Members[i].Assigned.AsConsumer()
		aa, _ := after.Members[i].Assigned.AsConsumer()
		if fmt.Sprint(ab.Topics) != fmt.Sprint(aa.Topics) {
			t.Errorf("member %s: assignment %v before, %v after", *after.Members[i].InstanceID, ab.Topics, aa.Topics)
		}
	}
}

// pause waits a little (for polling a state that other goroutines change).
func pause(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	<-pctx.Done()
}
