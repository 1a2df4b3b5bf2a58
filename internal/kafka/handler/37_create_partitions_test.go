package handler

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCreatePartitions(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	ctx := admCtx(t)
	admCreate(t, adm, "grow", 1, nil)

	resps, err := adm.CreatePartitions(ctx, 2, "grow", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 2 {
		t.Fatalf("answers: %+v", resps)
	}
	if r := resps["grow"]; r.Err != nil {
		t.Fatalf("grow: %v %s", r.Err, r.ErrMessage)
	}
	if r := resps["missing"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("missing: %v", r.Err)
	}
	if mt := admMetadata(t, cl, "grow"); len(mt.Partitions) != 3 {
		t.Fatalf("metadata shows %d partitions", len(mt.Partitions))
	}
	if _, err := b.Cluster.Partition("grow", 2); err != nil {
		t.Fatalf("new partition not open: %v", err)
	}

	for _, tc := range []struct {
		set int
		msg string
	}{{2, "higher than the requested 2"}, {3, "already has 3"}} {
		resps, err := adm.UpdatePartitions(ctx, tc.set, "grow")
		if err != nil {
			t.Fatal(err)
		}
		if r := resps["grow"]; !errors.Is(r.Err, kerr.InvalidPartitions) || !strings.Contains(r.ErrMessage, tc.msg) {
			t.Fatalf("set %d: %v %q", tc.set, r.Err, r.ErrMessage)
		}
	}

	vr, err := adm.ValidateCreatePartitions(ctx, 5, "grow")
	if err != nil || vr["grow"].Err != nil {
		t.Fatalf("validate: %v %+v", err, vr)
	}
	if tp, _ := b.Cluster.Topic("grow"); tp.Partitions != 3 {
		t.Fatalf("validate only changed the count to %d", tp.Partitions)
	}
}

func TestCreatePartitionsRaw(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	for _, name := range []string{"assigned", "short", "elsewhere", "dup"} {
		admCreate(t, adm, name, 1, nil)
	}
	topic := func(name string, count int32, assign ...[]int32) kmsg.CreatePartitionsRequestTopic {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = name, count
		for _, replicas := range assign {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = replicas
			rt.Assignment = append(rt.Assignment, a)
		}
		return rt
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Topics = []kmsg.CreatePartitionsRequestTopic{
		topic("assigned", 3, []int32{0}, []int32{0}),
		topic("short", 3, []int32{0}),
		topic("elsewhere", 2, []int32{4}),
		topic("dup", 2),
		topic("dup", 3),
	}
	resp := admRaw[*kmsg.CreatePartitionsResponse](t, cl, req)
	want := map[string]int16{
		"assigned":  0,
		"short":     kerr.InvalidReplicaAssignment.Code,
		"elsewhere": kerr.InvalidReplicaAssignment.Code,
		"dup":       kerr.InvalidRequest.Code,
	}
	if len(resp.Topics) != len(want) {
		t.Fatalf("%d answers for %d topics", len(resp.Topics), len(want))
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] || (st.ErrorCode != 0 && st.ErrorMessage == nil) {
			t.Errorf("%s: code %d (%v), want %d", st.Topic, st.ErrorCode, st.ErrorMessage, want[st.Topic])
		}
	}
	for name, n := range map[string]int32{"assigned": 3, "short": 1, "elsewhere": 1, "dup": 1} {
		if tp, _ := b.Cluster.Topic(name); tp.Partitions != n {
			t.Errorf("%s has %d partitions, want %d", name, tp.Partitions, n)
		}
	}
}
