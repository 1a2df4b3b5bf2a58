package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListGroupsVersions lists groups at every version, with the v4 state
// and v5 type filters.
func TestListGroupsVersions(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "lg", 1, nil)
	dc := dpDial(t, b.Addr)
	if code := dpCommit(dc, 2, "committer", -1, "", "lg", 0, 1, -1, nil); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	j := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(0, "joined", "", nil, "range"))
	if j.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(j.ErrorCode))
	}
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = v
		resp := dpDo[*kmsg.ListGroupsResponse](dc, req)
		if resp.ErrorCode != 0 || len(resp.Groups) != 2 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		got := map[string]kmsg.ListGroupsResponseGroup{}
		for _, g := range resp.Groups {
			got[g.Group] = g
		}
		if got["joined"].ProtocolType != "consumer" || got["committer"].ProtocolType != "" {
			t.Errorf("v%d: %+v", v, resp.Groups)
		}
		if v >= 4 && (got["joined"].GroupState != "CompletingRebalance" || got["committer"].GroupState != "Empty") {
			t.Errorf("v%d states: %+v", v, resp.Groups)
		}
		if v >= 5 && got["joined"].GroupType != "classic" {
			t.Errorf("v%d type: %+v", v, resp.Groups)
		}
	}
	for _, c := range []struct {
		states, types []string
		want          int
	}{
		{[]string{"Empty"}, nil, 1},
		{[]string{"completingrebalance", "Empty"}, nil, 2},
		{[]string{"Stable"}, nil, 0},
		{[]string{"NoSuchState"}, nil, 0},
		{nil, []string{"Classic"}, 2},
		{nil, []string{"consumer"}, 0},
	} {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version, req.StatesFilter, req.TypesFilter = 5, c.states, c.types
		if resp := dpDo[*kmsg.ListGroupsResponse](dc, req); len(resp.Groups) != c.want {
			t.Errorf("states %v types %v: %d groups, want %d", c.states, c.types, len(resp.Groups), c.want)
		}
	}
}
