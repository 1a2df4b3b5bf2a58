package handler

import (
	"math"
	"net"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeCluster(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	host, port, _ := net.SplitHostPort(b.Addr)

	req := kmsg.NewPtrDescribeClusterRequest()
	resp := admRaw[*kmsg.DescribeClusterResponse](t, cl, req)
	if resp.ErrorCode != 0 || resp.ClusterID != b.Cluster.ClusterID() || len(resp.ClusterID) != 22 || resp.ControllerID != 0 || resp.EndpointType != 1 {
		t.Fatalf("cluster: %+v", resp)
	}
	if resp.ClusterAuthorizedOperations != math.MinInt32 {
		t.Fatalf("authorized operations not asked for: %d", resp.ClusterAuthorizedOperations)
	}
	if len(resp.Brokers) != 1 {
		t.Fatalf("brokers: %+v", resp.Brokers)
	}
	if br := resp.Brokers[0]; br.NodeID != 0 || br.Host != host || strconv.Itoa(int(br.Port)) != port || br.IsFenced {
		t.Fatalf("broker %+v, want %s", br, b.Addr)
	}

	req.IncludeClusterAuthorizedOperations = true
	resp = admRaw[*kmsg.DescribeClusterResponse](t, cl, req)
	ops := resp.ClusterAuthorizedOperations
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationDescribe, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite} {
		if ops&(1<<op) == 0 {
			t.Errorf("operation %v missing from %b", op, ops)
		}
	}
	if ops&(1<<kmsg.ACLOperationRead) != 0 {
		t.Errorf("READ is not a cluster operation: %b", ops)
	}

	for endpoint, want := range map[int8]int16{2: kerr.MismatchedEndpointType.Code, 5: kerr.UnsupportedEndpointType.Code} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = endpoint
		resp := admRaw[*kmsg.DescribeClusterResponse](t, cl, req)
		if resp.ErrorCode != want || resp.ErrorMessage == nil || len(resp.Brokers) != 0 {
			t.Errorf("endpoint type %d: %+v", endpoint, resp)
		}
	}
}
