package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
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
//     transactions v2 (KIP-890 part 2) when it is 2. In a cluster the
//     finalized level is the lowest of every registered broker's
//     (metadata.BrokerInfo.TransactionVersion; a broker registered
//     before transactions v2 worked across brokers counts as 1), so a
//     mixed cluster during a rolling upgrade stays at v1 until every
//     broker can serve v2, and one broker set to 1 turns v2 off for all.
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
		if v := h.transactionVersion(); v > 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", v, v
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
			resp.FinalizedFeaturesEpoch = 1
		}
	}
	return now(resp)
}

// transactionVersion is the transaction.version feature level finalized
// for clients: this broker's setting, and in a cluster at most every
// registered broker's (fenced ones included: a broker restarting during a
// rolling upgrade must not flip the level up and back).
func (h *Handler) transactionVersion() int16 {
	if !h.c.Replicated() {
		return h.cfg.TransactionVersion
	}
	return finalizedTxnVersion(h.cfg.TransactionVersion, h.c.AllBrokers())
}

// finalizedTxnVersion is the lowest of own and every broker's registered
// transaction.version; a registration without one (a broker from before
// transactions v2 worked across brokers) counts as 1.
func finalizedTxnVersion(own int16, brokers []metadata.BrokerInfo) int16 {
	v := own
	for _, b := range brokers {
		bv := int16(1)
		if b.TransactionVersion != nil {
			bv = *b.TransactionVersion
		}
		v = min(v, bv)
	}
	return v
}
