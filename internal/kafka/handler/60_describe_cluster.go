package handler

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// DescribeCluster: the cluster id, the controller and the brokers: this
// node, at its advertised address, is all three.
//
// Behavior:
//   - ClusterAuthorizedOperations is -2147483648 (not computed) unless
//     asked for; then the CLUSTER operations the principal is allowed
//     (every one without an authorizer, as Kafka answers).
//   - v1+: EndpointType 1 (brokers) is served. 2 (controllers) is
//     MISMATCHED_ENDPOINT_TYPE, any other value UNSUPPORTED_ENDPOINT_TYPE,
//     each with Kafka's message: this is a broker endpoint.
//
// Version notes: v1 EndpointType; v2 IncludeFencedBrokers and IsFenced
// (this broker is never fenced). Flexible from v0.
func init() { register(60, 0, 2, handleDescribeCluster) }

// clusterOperations are the ACL operations of the CLUSTER resource (Kafka's
// AclEntry.supportedOperations), as an authorized-operations bit field.
var clusterOperations = aclBits(
	kmsg.ACLOperationAlter, kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction,
	kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
	kmsg.ACLOperationIdempotentWrite,
)

const (
	endpointBrokers     = 1
	endpointControllers = 2
)

func handleDescribeCluster(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointBrokers
	if req.Version >= 1 && r.EndpointType != endpointBrokers {
		code, msg := kerr.UnsupportedEndpointType, fmt.Sprintf("unsupported endpoint type %d", r.EndpointType)
		if r.EndpointType == endpointControllers {
			code, msg = kerr.MismatchedEndpointType, "the request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
		}
		resp.ErrorCode, resp.ErrorMessage = code.Code, &msg
		return now(resp)
	}
	live := h.brokers(req)
	if h.c.Replicated() && req.Version >= 2 && r.IncludeFencedBrokers {
		live = h.c.AllBrokers()
	}
	for _, bi := range live {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack, b.IsFenced = bi.ID, bi.Host, bi.Port, rackOrNil(bi.Rack), bi.Fenced
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID = h.cfg.ClusterID
	resp.ControllerID = h.c.ControllerID()
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = h.authorizedOps(req, acl.ResourceCluster, acl.ClusterName, clusterOperations)
	}
	return now(resp)
}
