package handler

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
)

// Config holds what the handlers need to know about the broker beyond the
// cluster state.
type Config struct {
	// AdvertisedHost and AdvertisedPort are given to clients in Metadata
	// and FindCoordinator.
	AdvertisedHost string
	AdvertisedPort int32
	// Listeners are the advertised endpoints by listener name: a client
	// is given the address of the listener it connected to (as Kafka
	// does), else AdvertisedHost and AdvertisedPort.
	Listeners map[string]Endpoint
	// SASLMechanisms are the mechanisms each SASL listener offers, by
	// listener name (of auth.Mechanisms, from sasl.enabled.mechanisms or
	// its listener.name.<listener>. override).
	SASLMechanisms map[string][]string
	// FailedAuthDelay delays the answer to a failed SASL authentication
	// (connection.failed.authentication.delay.ms).
	FailedAuthDelay time.Duration
	// PlainUsers are, by listener, the users of its PLAIN JAAS login
	// (user_<name>="<password>", Kafka's PlainLoginModule): PLAIN checks
	// them first, then the SCRAM credentials of the metadata.
	PlainUsers map[string]auth.Credentials
	// OAuth validates OAUTHBEARER tokens; nil when no JWKS is set.
	OAuth *auth.OAuthValidator
	// Reauth is connections.max.reauth.ms: the SASL session's lifetime,
	// told to clients in SaslAuthenticate v1+ (KIP-368); 0: forever.
	Reauth time.Duration
	// ACLs turns authorization on (authz.go).
	ACLs ACLConfig
	// ClusterID is returned in Metadata and DescribeCluster (default: the
	// cluster id the data directory was formatted with).
	ClusterID string
	Logger    *slog.Logger
	// Groups is the group coordinator; without one the group APIs answer
	// COORDINATOR_NOT_AVAILABLE.
	Groups *group.Coordinator
	// Quorum describes the metadata quorum (DescribeQuorum); nil on a
	// single node.
	Quorum QuorumSource
	// Txns is the transaction coordinator; without one the transaction
	// APIs answer COORDINATOR_NOT_AVAILABLE and transactional ids are
	// refused.
	Txns *txn.Coordinator
	// TxnPeer reaches the transaction coordinator on another broker of a
	// cluster; nil on a single node. Without it a cluster refuses
	// transactional producers.
	TxnPeer TxnPeer
	// NoTxnPeer says why a cluster broker has no TxnPeer (logged when a
	// transactional producer is refused).
	NoTxnPeer string
	// TransactionVersion is the transaction.version feature advertised in
	// ApiVersions: 2 enables transactions v2 (KIP-890 part 2).
	TransactionVersion int16
}

// TxnPeer is what the handlers need of other brokers for transactions in
// a cluster (the broker's inter-broker client).
type TxnPeer interface {
	// Verify asks the transaction coordinator, broker coordinator, whether
	// producer pid at epoch has an ongoing transaction txnID that includes
	// the partition (AddPartitionsToTxn v4+ VerifyOnly): nil when it has,
	// else an error saying why (the coordinator's Kafka error when it
	// answered), wrapping partition.ErrTxnVerifyUnavailable when no
	// answer came or the coordinator moved (the producer retries).
	Verify(ctx context.Context, coordinator int32, txnID string, pid int64, epoch int16, topic string, index int32) error
	// Add asks the transaction coordinator, broker coordinator, to add
	// the partitions to producer pid's transaction txnID at epoch,
	// starting one if none is ongoing (AddPartitionsToTxn v5 with
	// VerifyOnly false: transactions v2's Produce v12+ and TxnOffsetCommit
	// v5+ at a broker that does not coordinate). The answer comes once the
	// coordinator made the addition durable. It returns each partition's
	// error (the coordinator's Kafka error), or one error for all: wrapping
	// partition.ErrTxnVerifyUnavailable when no answer came or the
	// coordinator moved or is loading (the producer retries).
	Add(ctx context.Context, coordinator int32, txnID string, pid int64, epoch int16, parts []txn.TopicPartition) ([]error, error)
}

// Endpoint is an advertised host and port.
type Endpoint struct {
	Host string
	Port int32
}

// endpoint is the advertised address of the listener req arrived on.
func (h *Handler) endpoint(req *server.Request) (string, int32) {
	if e, ok := h.cfg.Listeners[req.Conn.Listener]; ok {
		return e.Host, e.Port
	}
	return h.cfg.AdvertisedHost, h.cfg.AdvertisedPort
}

// Handler answers Kafka requests from the cluster state. It implements
// server.Handler.
type Handler struct {
	c      *cluster.Cluster
	cfg    Config
	log    *slog.Logger
	groups *group.Coordinator
	txns   *txn.Coordinator

	authz      atomic.Pointer[authzCache]
	tokenCreds tokenCreds // delegation tokens' SCRAM credentials (tokens.go)

	stopping chan struct{} // closed by Stop: long polls answer at once
	stopOnce sync.Once

	// remoteTxnCoordinator, set by tests only, makes a single node act as
	// a cluster broker whose transaction coordinator is on the broker it
	// returns (reached through cfg.TxnPeer).
	remoteTxnCoordinator func() (int32, error)
}

// New returns a handler over c.
func New(c *cluster.Cluster, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = c.ClusterID()
	}
	return &Handler{c: c, cfg: cfg, log: cfg.Logger, groups: cfg.Groups, txns: cfg.Txns, stopping: make(chan struct{})}
}

// Stop makes waiting fetches answer now with what they have, and waiting
// JoinGroup and SyncGroup requests answer NOT_COORDINATOR, so a graceful
// shutdown does not wait out their MaxWait or rebalance timeout. Produce
// waits for fsync and offset commits still complete.
func (h *Handler) Stop() {
	h.stopOnce.Do(func() {
		close(h.stopping)
		if h.groups != nil {
			h.groups.StopWaiting()
		}
	})
}

// handleFunc handles one API. It runs on the connection's reader goroutine
// (see server.Handler): synchronous work happens in request order, waiting
// belongs in Reply.Finish.
type handleFunc func(h *Handler, ctx context.Context, req *server.Request) (server.Reply, error)

type api struct {
	min, max int16
	fn       handleFunc
}

// apis is filled by each NN_name.go file's init, next to its handler, so
// the advertised ranges can never disagree with what is served.
var apis = map[int16]api{}

func register(key int16, min, max int16, fn handleFunc) {
	if _, dup := apis[key]; dup {
		panic(fmt.Sprintf("api key %d registered twice", key))
	}
	if m := kmsg.RequestForKey(key); m == nil || max > m.MaxVersion() {
		panic(fmt.Sprintf("api key %d: version %d beyond what kmsg knows", key, max))
	}
	apis[key] = api{min: min, max: max, fn: fn}
}

// APIVersions lists every served API with its version range.
func (h *Handler) APIVersions() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for k, a := range apis {
		v := kmsg.NewApiVersionsResponseApiKey()
		v.ApiKey, v.MinVersion, v.MaxVersion = k, a.min, a.max
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

// Handle dispatches a request to its API's handler.
func (h *Handler) Handle(ctx context.Context, req *server.Request) (server.Reply, error) {
	a, ok := apis[req.Key]
	if !ok {
		return server.Reply{}, fmt.Errorf("api key %d not served", req.Key)
	}
	if !h.cfg.ACLs.Enabled {
		return a.fn(h, ctx, req)
	}
	deny, f := h.gate(req)
	if deny != nil {
		return now(deny)
	}
	reply, err := a.fn(h, ctx, req)
	return withFix(reply, f), err
}

// now replies with a ready response.
func now(resp kmsg.Response) (server.Reply, error) { return server.Reply{Response: resp}, nil }
