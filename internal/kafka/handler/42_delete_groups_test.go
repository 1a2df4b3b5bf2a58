package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDeleteGroupsVersions deletes at v0-v2; a deleted group's offsets are
// gone and the group no longer listed.
func TestDeleteGroupsVersions(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "dg", 1, nil)
	dc := dpDial(t, b.Addr)
	for v := int16(0); v <= 2; v++ {
		if code := dpCommit(dc, 2, "to-delete", -1, "", "dg", 0, 5, -1, nil); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Version, req.Groups = v, []string{"to-delete", "to-delete-never-existed"}
		resp := dpDo[*kmsg.DeleteGroupsResponse](dc, req)
		if len(resp.Groups) != 2 || resp.Groups[0].ErrorCode != 0 || resp.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("v%d: %+v", v, resp.Groups)
		}
		if got := dpFetchOffset(dc, 1, "to-delete", "dg", 0); got.Offset != -1 {
			t.Errorf("v%d: offset after deletion %+v", v, got)
		}
	}
	if lg := dpDo[*kmsg.ListGroupsResponse](dc, kmsg.NewPtrListGroupsRequest()); len(lg.Groups) != 0 {
		t.Errorf("groups after deletion: %+v", lg.Groups)
	}
}
