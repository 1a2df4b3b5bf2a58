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
//   - v3+ lists the feature transaction.version (supported 0-2, finalized
//     at the broker's transaction.version, 2 by default): clients use
//     transactions v2 (KIP-890 part 2) when it is 2.
func init() { register(18, 0, 4, handleAPIVersions) }

func handleAPIVersions(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ApiVersionsRequest)
	if req.Version >= 3 {
		h.log.Debug("client", "software", r.ClientSoftwareName, "version", r.ClientSoftwareVersion, "client_id", req.ClientID)
	}
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = h.APIVersions()
	if req.Version >= 3 && h.txns != nil {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = "transaction.version", 0, 2
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		if v := h.cfg.TransactionVersion; v > 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", v, v
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
			resp.FinalizedFeaturesEpoch = 1
		}
	}
	return now(resp)
}
