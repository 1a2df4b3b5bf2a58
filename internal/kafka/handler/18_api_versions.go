package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// ApiVersions: the version range of every API this broker serves, built
// from the registrations in this package.
//
// Version notes:
//   - v0: ranges only. v1: throttle time. v3 (flexible): client software
//     name and version in the request, which we log at debug.
//   - A request at a version above ours is answered by the server package in
//     the v0 layout with UNSUPPORTED_VERSION, never by a closed connection.
func init() { register(18, 0, 4, handleAPIVersions) }

func handleAPIVersions(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ApiVersionsRequest)
	if req.Version >= 3 {
		h.log.Debug("client", "software", r.ClientSoftwareName, "version", r.ClientSoftwareVersion, "client_id", req.ClientID)
	}
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = h.APIVersions()
	return now(resp)
}
