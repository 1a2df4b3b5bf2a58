// Package broker is Strom's composition root: it opens the cluster state
// on a data directory, starts the Kafka listener and the HTTP listener
// (health, metrics, the web console and its API), and stops them in the
// reverse order.
//
// Every node runs the metadata quorum (quorum.go): a single node is a
// cluster of one, whose raft group has one voter, no transport and no
// controller listener, leads within its start and registers this broker
// before the listeners serve; several voters make a cluster node.
//
// Start order: metadata quorum (its log replayed, an older __strom_metadata
// migrated) → cluster (recovery happens here) → group coordinator (replays
// __consumer_offsets; in a cluster of several it replays whenever this
// broker takes the lead of its partition, see group/follow.go) →
// registration (a cluster of one) → Kafka listener → HTTP.
// Shutdown order: stop accepting (waiting joins and syncs answer at once) →
// answer in-flight requests → HTTP → transaction and group coordinators →
// metadata quorum → cluster close (logs sealed, checkpoints and the
// clean-shutdown marker written). Every goroutine started here is stopped
// by Shutdown.
//
// The HTTP listener is on loopback (127.0.0.1:8080) unless configured: the
// console has a login only when the broker has a SASL listener with SCRAM or
// PLAIN (it logs users in through it). Whatever its address, /metrics, the console and
// the profiler answer only to the broker's own names (console.HostGuard,
// against DNS rebinding); /healthz answers anyone. The profiler is off
// unless --pprof or http.pprof.enable turns it on.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/console"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/handler"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/replica"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/tlsconf"
)

// DefaultHTTPAddr is the HTTP listener's address when none is given:
// without a SASL listener the console has no login, so it is reachable
// from this machine only until an operator opens it up (--http-addr :8080).
const DefaultHTTPAddr = "127.0.0.1:8080"

// Config configures a broker. Zero values take the embedded defaults.
type Config struct {
	DataDir        string // ./data
	KafkaAddr      string // :9092
	AdvertisedAddr string // localhost:<kafka port>
	// Listeners, when set, are the Kafka listeners (from listeners and
	// listener.security.protocol.map), each PLAINTEXT, SSL,
	// SASL_PLAINTEXT or SASL_SSL; KafkaAddr and AdvertisedAddr are then
	// unused. Empty: one PLAINTEXT listener on KafkaAddr.
	Listeners []metadata.Listener
	// HTTPAddr is the console, API, health and metrics listener:
	// 127.0.0.1:8080 (loopback only) when empty; "-" disables it.
	HTTPAddr string
	// HTTPAllowedHosts are host names, besides localhost, IP addresses and
	// HTTPAddr's host, that the HTTP listener answers to (the guard against
	// DNS rebinding, see console.HostGuard); added to http.allowed.hosts.
	HTTPAllowedHosts []string
	// Pprof serves Go's profiler at /debug/pprof/ (or http.pprof.enable).
	Pprof bool
	// Props are broker configs under their Kafka names (from --config).
	Props  map[string]string
	Logger *slog.Logger
	// FS holds the data directory: every file under DataDir is opened
	// through it (logs, indexes, checkpoints, the metadata store, producer
	// snapshots, __consumer_offsets). Nil is the operating system's. Tests
	// pass a memfs.FS to cut power at a chosen moment; DescribeLogDirs
	// still asks the OS for the disk's size (-1 when the path is not there).
	FS vfs.FS
}

// Broker is a running broker: a cluster of one, or a node of a cluster.
type Broker struct {
	cfg     Config
	bc      *metadata.BrokerConfig
	log     *slog.Logger
	cluster *cluster.Cluster
	groups  *group.Coordinator
	txns    *txn.Coordinator
	txnPeer *txnPeer // a cluster's inter-broker client for transactions; nil on a cluster of one (every coordinator is local)
	// noTxnPeer is why a cluster node has no txnPeer ("" when it has).
	noTxnPeer string
	kafka     *server.Server
	handler   *handler.Handler
	kafkaLn   net.Listener // the first of lns
	lns       []net.Listener
	specs     []metadata.Listener // lns[i] serves specs[i]
	// sec is the listeners' security (the console logs users in through
	// a SASL listener).
	sec *security
	// stopOAuth ends the refreshes of a JWKS fetched from a URL (the
	// goroutine is counted in wg); nil without one.
	stopOAuth context.CancelFunc
	httpSrv   *http.Server
	httpLn    net.Listener
	console   *console.Console // nil when HTTP is disabled
	// quorum is the node's metadata quorum (one voter on a single node);
	// stopBackground ends its registration and fencing loops, whose
	// goroutines bg counts. registered: a cluster of one registered
	// itself at Start.
	quorum     *quorum
	registered bool
	// replication exposes the partition replicas' metrics (nil on a
	// cluster of one: it has no replicated partitions).
	replication    *replicationCollector
	stopBackground context.CancelFunc
	bg             sync.WaitGroup
	wg             sync.WaitGroup
	serveMu        sync.Mutex
	errs           []error
	// failed is closed, with failure set, when the broker cannot go on
	// (its metadata log stopped by a storage failure): see Failed.
	failed  chan struct{}
	failure error
}

// Start opens the data directory and starts serving.
func Start(cfg Config) (*Broker, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.KafkaAddr == "" {
		cfg.KafkaAddr = ":9092"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = DefaultHTTPAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bc, err := metadata.NewBrokerConfig(cfg.Props)
	if err != nil {
		return nil, err
	}
	scfg, err := kafkaServerConfig(bc)
	if err != nil {
		return nil, err
	}
	if v := bc.Settings().TransactionVersion; v < 0 || v > 2 {
		return nil, fmt.Errorf("%w: transaction.version=%d: want 0 to 2", metadata.ErrInvalidConfig, v)
	}
	if n := bc.Settings().HTTPProduceMaxInflightBytes; n != -1 && n < console.DefaultMaxBodyBytes {
		return nil, fmt.Errorf("%w: http.produce.max.inflight.bytes=%d: want -1 (no limit) or at least the HTTP body limit (%d)",
			metadata.ErrInvalidConfig, n, console.DefaultMaxBodyBytes)
	}
	scfg.Logger = cfg.Logger
	b := &Broker{cfg: cfg, log: cfg.Logger, bc: bc, failed: make(chan struct{})}
	files, err := openFileLimit()
	if err != nil {
		cfg.Logger.Warn("open-file limit unknown; partitions are bounded by max.broker.partitions alone", "err", err)
	}
	ccfg := cluster.Config{DataDir: cfg.DataDir, FS: cfg.FS, Broker: bc, Logger: cfg.Logger, FileLimit: files}
	layout, err := bc.Layout()
	if err != nil {
		return nil, err
	}
	// Every node runs the metadata quorum: a single node (no
	// controller.quorum.voters, or only itself) is a cluster of one, whose
	// quorum has one voter and no transport; several voters make a
	// cluster, whose nodes talk on the controller listener.
	voters := layout.Voters
	if len(voters) == 0 {
		voters = []metadata.Voter{{ID: bc.Settings().NodeID, Addr: layout.ControllerAddr}}
	}
	b.quorum = &quorum{log: cfg.Logger, node: bc.Settings().NodeID, voters: voters, addr: layout.ControllerAddr}
	ccfg.Quorum = b.quorum
	if len(voters) > 1 {
		csec, err := newControllerSecurity(bc, layout.Controller, cfg.Logger)
		if err != nil {
			return nil, err
		}
		b.quorum.sec = csec
		ccfg.FreshClusterID = clusterIDFor(voters)
		q := b.quorum
		ccfg.RaftSend = func(g uint64, m *raftpb.Message) { q.tr.Send(g, m) }
		ccfg.RaftSendSnapshot = func(g uint64, m *raftpb.Message, body replica.SnapshotBody, done func(error)) {
			q.tr.SendSnapshot(g, m, body, done)
		}
		// Set before the cluster's liveness loop starts (OpenMetadata).
		ccfg.PeerConnected = func(n int32) bool { return q.tr != nil && q.tr.Connected(n) }
		ccfg.PeerProbe = func(ctx context.Context, n int32) bool { return q.tr != nil && q.tr.Probe(ctx, n) }
		ccfg.ReplicaMetrics = new(replica.Metrics)
		b.replication = newReplicationCollector(b, ccfg.ReplicaMetrics)
	}
	fsys := cfg.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	ccfg.OpenMetadata = func(clusterID string) (*metadata.Store, error) {
		store, err := b.quorum.open(fsys, cfg.DataDir, clusterID)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.quorum.migrate(ctx, fsys, cfg.DataDir); err != nil {
			b.quorum.close()
			return nil, err
		}
		return store, nil
	}
	b.cluster, err = cluster.Open(ccfg)
	if err != nil {
		b.quorum.close()
		return nil, err
	}
	b.quorum.partitions.Store(b.cluster)
	// The coordinators follow the leadership of their logs only when it
	// can move: with peers. A cluster of one holds every internal
	// partition itself, always, so its coordinators load them at Open as
	// they always did (following would load them asynchronously, at the
	// first poll after the topic's creation, for no gain).
	gcfg := group.ConfigFor(b.cluster, cfg.Logger)
	gcfg.FollowLeader = b.cluster.Peers()
	b.groups, err = group.Open(gcfg)
	if err != nil {
		b.quorum.close()
		b.cluster.Close()
		return nil, fmt.Errorf("group coordinator: %w", err)
	}
	b.cluster.OnTopicDeleted(b.groups.TopicDeleted)
	tcfg := txn.ConfigFor(b.cluster, b.groups, cfg.Logger)
	tcfg.FollowLeader = b.cluster.Peers()
	tv := bc.Settings().TransactionVersion
	if b.quorum.tr != nil {
		// Transactions in a cluster: markers to other brokers and
		// verification by the coordinator's broker go through an
		// inter-broker client on inter.broker.listener.name, with that
		// listener's TLS and SASL (interbroker.go). When the settings
		// cannot make one, transactional producers are refused with the
		// reason (handler 22), never accepted and left hanging.
		ib, err := newInterBroker(bc, listenersOrDefault(cfg))
		if err != nil {
			b.noTxnPeer = err.Error()
			cfg.Logger.Warn("transactions are refused in this cluster: the inter-broker client cannot be made", "err", err)
		} else {
			b.txnPeer = newTxnPeer(b.cluster, bc.Settings().NodeID, ib, cfg.Logger)
			tcfg.Markers = b.txnPeer
			cfg.Logger.Info("inter-broker client for transactions", "client", ib.String())
			if s := bc.Settings(); s.AuthorizerClassName != "" && !slices.Contains(acl.ParseSuperUsers(s.SuperUsers), ib.principal()) {
				cfg.Logger.Warn("ACLs are on and the inter-broker principal is not in super.users: it needs CLUSTER_ACTION on the cluster (WriteTxnMarkers, AddPartitionsToTxn verification), or transactions across brokers fail",
					"principal", ib.principal())
			}
		}
	}
	b.txns, err = txn.Open(tcfg)
	if err != nil {
		b.groups.Close()
		b.quorum.close()
		b.cluster.Close()
		return nil, fmt.Errorf("transaction coordinator: %w", err)
	}
	cfg.Listeners = listenersOrDefault(cfg)
	b.specs = cfg.Listeners
	sec, err := newSecurity(bc, cfg.Listeners, cfg.Logger)
	if err != nil {
		b.txns.Close()
		b.groups.Close()
		b.quorum.close()
		b.cluster.Close()
		return nil, err
	}
	b.sec = sec
	endpoints := map[string]handler.Endpoint{}
	for _, spec := range cfg.Listeners {
		ln, err := net.Listen("tcp", spec.Addr)
		if err == nil {
			var host string
			var port int32
			host, port, err = advertised(spec.Advertised, ln.Addr())
			endpoints[spec.Name] = handler.Endpoint{Host: host, Port: port}
			b.lns = append(b.lns, ln)
		}
		if err != nil {
			for _, ln := range b.lns {
				ln.Close()
			}
			b.txns.Close()
			b.groups.Close()
			b.quorum.close()
			b.cluster.Close()
			return nil, fmt.Errorf("kafka listener %s: %w", spec.Name, err)
		}
	}
	b.kafkaLn = b.lns[0]
	first := endpoints[cfg.Listeners[0].Name]
	hcfg := handler.Config{AdvertisedHost: first.Host, AdvertisedPort: first.Port, Listeners: endpoints,
		Logger: cfg.Logger, Groups: b.groups, Txns: b.txns, TransactionVersion: tv,
		SASLMechanisms: sec.mechanisms, FailedAuthDelay: bc.Settings().FailedAuthenticationDelay, Reauth: bc.Settings().ConnectionsMaxReauth,
		ACLs: sec.acls, OAuth: sec.oauth, PlainUsers: sec.plainUsers}
	hcfg.Quorum = b.quorum
	if b.txnPeer != nil {
		hcfg.TxnPeer = b.txnPeer
	}
	hcfg.NoTxnPeer = b.noTxnPeer
	h := handler.New(b.cluster, hcfg)
	b.handler = h
	// Brokers register every listener's advertised address (Kafka's
	// BrokerRegistration endpoints): a client is given each broker's
	// address on the listener it connected to, and the inter-broker
	// client dials inter.broker.listener.name's.
	var eps []metadata.Endpoint
	for _, spec := range cfg.Listeners {
		e := endpoints[spec.Name]
		eps = append(eps, metadata.Endpoint{Listener: spec.Name, Host: e.Host, Port: e.Port})
	}
	self := metadata.BrokerInfo{ID: bc.Settings().NodeID, Host: first.Host, Port: first.Port, Rack: bc.Settings().BrokerRack,
		ControllerAddr: layout.ControllerAddr, Incarnation: logdir.RandomUUID(), Endpoints: eps, TransactionVersion: &tv,
		AnswersProbes: true}
	if b.quorum.tr == nil {
		// A cluster of one leads its quorum already: it registers before
		// it serves, so that its first client sees it in Metadata and
		// can create topics (placement needs a live broker).
		if err := b.registerAlone(self); err != nil {
			for _, ln := range b.lns {
				ln.Close()
			}
			b.txns.Close()
			b.groups.Close()
			b.quorum.close()
			b.cluster.Close()
			return nil, err
		}
	}
	b.startClusterLoops(self)
	b.kafka = server.New(scfg, h)
	for i, ln := range b.lns {
		l := sec.listener(cfg.Listeners[i])
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.kafka.ServeListener(ln, l); err != nil && !errors.Is(err, server.ErrServerClosed) {
				b.recordErr(fmt.Errorf("kafka listener %s: %w", l.Name, err))
			}
		}()
	}
	if sec.oauth != nil {
		ctx, cancel := context.WithCancel(context.Background())
		b.stopOAuth = cancel
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			sec.oauth.Run(ctx) // returns at once for a JWKS file
		}()
	}
	if cfg.HTTPAddr != "-" {
		b.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			b.Shutdown(context.Background())
			return nil, fmt.Errorf("http listener: %w", err)
		}
		if bs := bc.Settings(); bs.HTTPSSL {
			// The Kafka listeners' certificate, without their client
			// certificate demand (browsers have none).
			src, err := tlsconf.New(tlsconf.Settings{KeystoreLocation: bs.SSLKeystoreLocation, CertificateChain: bs.SSLKeystoreCertificateChain,
				Key: bs.SSLKeystoreKey, KeyPassword: bs.SSLKeyPassword, EnabledProtocols: bs.SSLEnabledProtocols, Logger: cfg.Logger})
			if err != nil {
				b.httpLn.Close()
				b.httpLn = nil
				b.Shutdown(context.Background())
				return nil, fmt.Errorf("%w: http.ssl.enable: %v", metadata.ErrInvalidConfig, err)
			}
			b.httpLn = tls.NewListener(b.httpLn, src.ServerConfig())
		}
		b.httpSrv = &http.Server{Handler: b.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.httpSrv.Serve(b.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.recordErr(fmt.Errorf("http listener: %w", err))
			}
		}()
	}
	return b, nil
}

// listenersOrDefault is cfg.Listeners, or one PLAINTEXT listener on
// KafkaAddr when none is configured.
func listenersOrDefault(cfg Config) []metadata.Listener {
	if len(cfg.Listeners) == 0 {
		return []metadata.Listener{{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: cfg.KafkaAddr, Advertised: cfg.AdvertisedAddr}}
	}
	return cfg.Listeners
}

// kafkaServerConfig maps the broker settings to the Kafka listener's limits,
// refusing combinations the listener cannot honour.
func kafkaServerConfig(bc *metadata.BrokerConfig) (server.Config, error) {
	bs := bc.Settings()
	maxRequest := bs.SocketRequestMaxBytes
	if maxRequest < 1 || maxRequest > math.MaxInt32 {
		return server.Config{}, fmt.Errorf("%w: socket.request.max.bytes=%d: want 1 to %d", metadata.ErrInvalidConfig, maxRequest, math.MaxInt32)
	}
	// A request of the maximum size must fit in the budget.
	queued := bs.QueuedMaxRequestBytes
	if queued != -1 && queued < maxRequest {
		return server.Config{}, fmt.Errorf("%w: queued.max.request.bytes=%d: want -1 (no limit) or at least socket.request.max.bytes (%d)",
			metadata.ErrInvalidConfig, queued, maxRequest)
	}
	if bs.FetchMaxBytes < 1024 {
		return server.Config{}, fmt.Errorf("%w: fetch.max.bytes=%d: want at least 1024", metadata.ErrInvalidConfig, bs.FetchMaxBytes)
	}
	readTimeout := bs.SocketRequestReadTimeout
	if readTimeout <= 0 {
		readTimeout = -1 // none
	}
	return server.Config{
		MaxRequestBytes:       int32(maxRequest),
		MaxQueuedRequestBytes: queued, // -1: the listener's "no limit"
		RequestReadTimeout:    readTimeout,
		MaxConnections:        bs.MaxConnections,
		MaxConnectionsPerIP:   bs.MaxConnectionsPerIP,
		IdleTimeout:           bs.ConnectionsMaxIdle,
	}, nil
}

func (b *Broker) recordErr(err error) {
	b.serveMu.Lock()
	b.errs = append(b.errs, err)
	b.serveMu.Unlock()
	b.log.Error("listener failed", "err", err)
}

// advertised picks the host and port given to clients: the configured
// address, or localhost at the listener's port.
func advertised(addr string, ln net.Addr) (string, int32, error) {
	_, lport, _ := net.SplitHostPort(ln.String())
	host, port := "localhost", lport
	if addr != "" {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return "", 0, fmt.Errorf("advertised address %q: want host:port", addr)
		}
		host, port = h, p
		if port == "" || port == "0" {
			port = lport
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("advertised address %q: bad port", addr)
	}
	return host, int32(n), nil
}

// KafkaAddr is the first Kafka listener's address.
func (b *Broker) KafkaAddr() net.Addr { return b.kafkaLn.Addr() }

// ListenerAddr is the address of the Kafka listener named name, or nil.
func (b *Broker) ListenerAddr(name string) net.Addr {
	for i, spec := range b.specs {
		if strings.EqualFold(spec.Name, name) {
			return b.lns[i].Addr()
		}
	}
	return nil
}

// HTTPAddr is the HTTP listener's address (nil when disabled).
func (b *Broker) HTTPAddr() net.Addr {
	if b.httpLn == nil {
		return nil
	}
	return b.httpLn.Addr()
}

// KafkaStats returns the Kafka listener's counters: connections, protocol
// errors, panics, the request budget (for tests and tools in this process;
// /metrics exports the same).
func (b *Broker) KafkaStats() server.Stats { return b.kafka.Stats() }

// Cluster exposes the broker's state (for the console and tests).
func (b *Broker) Cluster() *cluster.Cluster { return b.cluster }

// Groups exposes the group coordinator (for the console and tests: group
// states, committed offsets, lag).
func (b *Broker) Groups() *group.Coordinator { return b.groups }

// httpHandler serves /healthz to anyone (the partitions it names only to
// the broker's own names), and /metrics, the profiler (when on) and the
// console only to requests whose Host is one this broker answers to
// (console.HostGuard): a DNS-rebinding page must not read group lag, heap
// profiles or messages. Probes that dial by any name keep working.
func (b *Broker) httpHandler() http.Handler {
	hosts := append(slices.Clone(b.cfg.HTTPAllowedHosts), b.bc.Settings().HTTPAllowedHosts...)
	// The configured address, not the bound one: its host is the name
	// an operator gave (the bound one is always an address).
	guard := console.NewHostGuard(b.cfg.HTTPAddr, hosts)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cleaner := newCleanerCollector(b)
	reg.MustRegister(newCollector(b), cleaner)
	if b.replication != nil {
		reg.MustRegister(b.replication)
	}
	// The console reads the cleaner's gauges as /metrics shows them (the
	// protocol has no request for them), from a registry of their own, so
	// that reading them gathers nothing else.
	cleanerReg := prometheus.NewRegistry()
	cleanerReg.MustRegister(cleaner)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { b.healthz(w, r, guard.Allowed(r.Host)) })
	mux.Handle("GET /metrics", guard.Wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	// Go's profiler, for finding where a broker spends its time
	// (go tool pprof http://127.0.0.1:8080/debug/pprof/profile). Off
	// unless asked for: stacks and heap profiles show what the broker
	// holds, records included.
	if b.cfg.Pprof || b.bc.Settings().HTTPPprof {
		pp := http.NewServeMux()
		pp.HandleFunc("/debug/pprof/", pprof.Index)
		pp.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pp.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		pp.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.Handle("/debug/pprof/", guard.Wrap(pp))
	} else {
		mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "404 the profiler is off: start the broker with --pprof (or http.pprof.enable=true)", http.StatusNotFound)
		})
	}
	// The console is a Kafka client of this broker, through its own
	// listener, like any other client. With a SASL listener it has a
	// login: each user's calls go through that listener authenticated as
	// the user, so the broker's ACLs decide. Without one, it is open and
	// connects as ANONYMOUS over PLAINTEXT, as before.
	ccfg := console.Config{
		Registerer:      reg,
		Logger:          b.log,
		ListenAddr:      b.cfg.HTTPAddr,
		AllowedHosts:    hosts,
		MaxProduceBytes: b.bc.Settings().HTTPProduceMaxInflightBytes,
		Metrics:         console.MetricsGatherer(cleanerReg),
	}
	if i, mech, opts := b.consoleLoginListener(); i >= 0 {
		ccfg.Brokers = []string{dialAddr(b.lns[i].Addr())}
		ccfg.ClientOpts = opts
		ccfg.Login = &console.Login{Mechanism: mech, SecureCookie: b.bc.Settings().HTTPSSL}
		b.log.Info("console login on: users log in with their SASL credentials", "listener", b.specs[i].Name, "mechanism", mech)
	} else {
		plain := slices.IndexFunc(b.specs, func(l metadata.Listener) bool { return l.Protocol == "PLAINTEXT" })
		if plain < 0 {
			b.log.Warn("console disabled: it needs a SASL_PLAINTEXT or SASL_SSL listener (without required client certificates) with PLAIN or SCRAM, for its login, or a PLAINTEXT one (open, no login)")
			return mux
		}
		ccfg.Brokers = []string{dialAddr(b.lns[plain].Addr())}
		b.log.Warn("console open without login: the broker has no SASL listener the console can log users in through; anyone who reaches the HTTP listener acts as User:ANONYMOUS", "http", b.cfg.HTTPAddr)
	}
	con, err := console.New(ccfg)
	if err != nil {
		b.log.Error("console disabled", "err", err)
		return mux
	}
	b.console = con
	mux.Handle("/", con.Handler())
	return mux
}

// consoleLogin prefers, in this order, the mechanisms the console logs
// users in with: SCRAM first (the password never crosses the wire).
// SASL_PLAINTEXT is preferred to SASL_SSL: the console's connections are
// to its own broker on loopback.
var consoleLogin = []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"}

// consoleLoginListener is the listener (an index of specs), mechanism and
// extra client options the console logs users in through: the first
// SASL_PLAINTEXT listener serving one of consoleLogin's mechanisms, else
// the first such SASL_SSL one that does not require client certificates
// (the console has none), dialed with a client configuration pinned to
// the listener's own certificate (it dials a loopback address the
// certificate need not name); -1 if none.
func (b *Broker) consoleLoginListener() (int, string, []kgo.Opt) {
	for _, proto := range []string{"SASL_PLAINTEXT", "SASL_SSL"} {
		for i, l := range b.specs {
			if l.Protocol != proto {
				continue
			}
			var opts []kgo.Opt
			if l.TLS() {
				src := b.sec.listeners[l.Name].tls
				if src == nil || src.Current().ClientAuth == tls.RequireAndVerifyClientCert {
					continue
				}
				opts = append(opts, kgo.DialTLSConfig(src.SelfClientConfig()))
			}
			for _, m := range consoleLogin {
				if slices.Contains(b.sec.mechanisms[l.Name], m) {
					return i, m, opts
				}
			}
		}
	}
	return -1, "", nil
}

// healthz answers the health check. 200 "ok" when every partition's
// storage is healthy. 503 "failed" when any partition's log failed (an
// fsync error: it takes no writes until the broker restarts and recovers
// it), so that an orchestrator restarts the broker. 200 "degraded" when
// partitions cannot write for now (a full disk, no file descriptors): a
// restart would not help, reads are served and producers get a retriable
// error, so a load balancer should keep the broker, and alerting should
// watch strom_partitions{state="degraded"}. Each not-ok partition follows,
// one per line: "<topic>-<partition> <state> <kind>: <error>", when
// detail is set: the Host is one the broker answers to (console.HostGuard).
// Any other Host gets the status and the word only, so that probes by any
// name work and a DNS-rebinding page learns no topic names.
func (b *Broker) healthz(w http.ResponseWriter, _ *http.Request, detail bool) {
	w.Header().Set("Content-Type", "text/plain")
	un := b.cluster.UnhealthyPartitions()
	status, word := http.StatusOK, "ok"
	for _, ph := range un {
		if ph.Health == seglog.Failed {
			status, word = http.StatusServiceUnavailable, "failed"
			break
		}
		word = "degraded"
	}
	w.WriteHeader(status)
	fmt.Fprintln(w, word)
	if !detail {
		return
	}
	for _, ph := range un {
		fmt.Fprintf(w, "%s-%d %s %s: %v\n", ph.Topic, ph.Partition.Partition, ph.Health, seglog.ErrorKind(ph.Err), ph.Err)
	}
}

// dialAddr is an address this process can dial to reach a listener:
// loopback when the listener is on every interface.
func dialAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Failed is closed when the broker cannot go on and should be shut down:
// its metadata log stopped on a storage failure (a full or failing disk),
// so its view of the cluster would only grow stale. Kafka's brokers stop
// when their metadata log directory fails; `strom serve` does too. Failure
// says why, once Failed is closed.
func (b *Broker) Failed() <-chan struct{} { return b.failed }

// Failure is the reason Failed was closed (nil before).
func (b *Broker) Failure() error {
	select {
	case <-b.failed:
		return b.failure
	default:
		return nil
	}
}

// Shutdown stops the listeners, answers the requests already read, and
// closes the cluster cleanly. It returns the first error met.
func (b *Broker) Shutdown(ctx context.Context) error {
	var first error
	if b.quorum.tr != nil && b.cluster != nil {
		// While the transport and the metadata quorum still run: the
		// partitions this broker leads get another leader, so a rolling
		// restart shows clients a leader change, not an outage.
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b.cluster.HandOverLeadership(hctx)
		b.quorum.handOver(hctx)
		cancel()
	}
	// The console first: its streams are clients of the Kafka listener,
	// and SSE streams would hold the HTTP server's Shutdown open.
	if b.console != nil {
		if err := b.console.Close(ctx); err != nil {
			first = err
		}
	}
	if b.handler != nil {
		b.handler.Stop()
	}
	if b.kafka != nil {
		if err := b.kafka.Shutdown(ctx); err != nil {
			first = err
		}
	}
	if b.httpSrv != nil {
		if err := b.httpSrv.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	if b.stopOAuth != nil {
		b.stopOAuth()
	}
	b.wg.Wait()
	if b.stopBackground != nil {
		b.stopBackground()
		b.bg.Wait()
	}
	// The transaction coordinator first: its completions commit offsets
	// through the group coordinator.
	if err := b.txns.Close(); err != nil && first == nil {
		first = err
	}
	if b.txnPeer != nil {
		b.txnPeer.close()
	}
	if err := b.groups.Close(); err != nil && first == nil {
		first = err
	}
	b.quorum.close()
	if err := b.cluster.Close(); err != nil && first == nil {
		first = err
	}
	b.serveMu.Lock()
	defer b.serveMu.Unlock()
	if first == nil && len(b.errs) > 0 {
		first = b.errs[0]
	}
	return first
}

// registerWarnAfter and registerWarnEvery pace the warning of a node that
// cannot register (no quorum leader).
const (
	registerWarnAfter = 5 * time.Second
	registerWarnEvery = 15 * time.Second
)

// registerAlone registers a cluster of one before it serves: its quorum
// leads already (quorum.open waited for it), so the registration is one
// append of the metadata log, fsynced. A registration that says the same
// (addresses, rack, transaction version; not fenced) is kept: a restart
// on the same addresses writes nothing for it (no other node needs to
// tell this process from the last, which is what Incarnation is for).
func (b *Broker) registerAlone(self metadata.BrokerInfo) error {
	if b.quorum.readOnly != nil {
		// Clients are given this broker's addresses from its listeners
		// (handler), not from the registration the log holds.
		b.log.Warn("not registering the broker: the metadata log is read-only", "err", b.quorum.readOnly)
		b.registered = true
		return nil
	}
	for _, old := range b.cluster.AllBrokers() {
		if old.ID == self.ID && sameRegistration(old, self) {
			b.registered = true
			return nil
		}
	}
	if err := b.cluster.Register(self); err != nil {
		return fmt.Errorf("registering broker %d with its metadata quorum of one: %w", self.ID, err)
	}
	b.log.Debug("broker registered", "node", self.ID, "host", self.Host, "port", self.Port, "rack", self.Rack)
	b.registered = true
	return nil
}

// sameRegistration reports whether registration a is unfenced and has
// b's addresses, rack and transaction version.
func sameRegistration(a, b metadata.BrokerInfo) bool {
	tv := func(v *int16) int16 {
		if v == nil {
			return -1
		}
		return *v
	}
	return !a.Fenced && a.Host == b.Host && a.Port == b.Port && a.Rack == b.Rack && a.ControllerAddr == b.ControllerAddr &&
		slices.Equal(a.Endpoints, b.Endpoints) && tv(a.TransactionVersion) == tv(b.TransactionVersion) &&
		a.AnswersProbes == b.AnswersProbes
}

// startClusterLoops starts a node's background work: watching its
// metadata log (the broker fails when it stops), registering this broker
// with the quorum (retried until it is committed; done already by a
// cluster of one), and the fencing of brokers whose sessions lapse while
// this node leads the quorum. Shutdown stops them.
func (b *Broker) startClusterLoops(self metadata.BrokerInfo) {
	ctx, cancel := context.WithCancel(context.Background())
	b.stopBackground = cancel
	b.bg.Add(3)
	go func() {
		defer b.bg.Done()
		group := b.quorum.group
		if group == nil { // read-only: nothing runs that could stop
			<-ctx.Done()
			return
		}
		select {
		case <-ctx.Done():
		case <-group.Done():
			if err := group.Err(); err != nil {
				b.failure = fmt.Errorf("the metadata log stopped: %w", err)
				close(b.failed)
			}
		case <-b.quorum.duplicate:
			// Two processes with one raft id in a raft group can vote
			// twice: the second one stops (its peers refused it).
			b.failure = fmt.Errorf("node.id %d is already in use: %w", self.ID, b.quorum.duplicateErr)
			close(b.failed)
		}
	}()
	go func() {
		defer b.bg.Done()
		if b.registered {
			return
		}
		wait := 100 * time.Millisecond
		start, warned := time.Now(), time.Time{}
		for {
			err := b.cluster.Register(self)
			if err == nil {
				b.log.Info("broker registered", "node", self.ID, "host", self.Host, "port", self.Port, "rack", self.Rack)
				return
			}
			b.log.Debug("registering with the metadata quorum; retrying", "err", err)
			// Unreachable controllers, another cluster id or another
			// voters list (both refused by the peers, which log it) look
			// alike from here: say so, every registerWarnEvery.
			if since := time.Since(start); since >= registerWarnAfter && time.Since(warned) >= registerWarnEvery {
				warned = time.Now()
				b.log.Warn("cannot register with the metadata quorum: no quorum leader reachable; check that a majority of "+
					"controller.quorum.voters are running and reachable on their controller listeners, and were formatted "+
					"with this node's cluster.id and given the same controller.quorum.voters (peers log refusals)",
					"node", self.ID, "voters", b.bc.Settings().ControllerQuorumVoters, "cluster_id", b.cluster.ClusterID(),
					"waiting", since.Truncate(time.Second), "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 2*time.Second)
		}
	}()
	go func() {
		defer b.bg.Done()
		b.cluster.RunFencing(ctx)
	}()
}

// RebuildMetadata writes a new metadata file for a data directory that
// lost its own, from its partition directories (see
// cluster.RebuildMetadata); `strom storage rebuild-metadata` runs it.
func RebuildMetadata(dataDir string, logger *slog.Logger) (cluster.RebuildReport, error) {
	return cluster.RebuildMetadata(nil, dataDir, logger)
}

// Format formats a data directory for a cluster and node.id, as
// `kafka-storage.sh format` does (`strom storage format`); see
// logdir.Format.
func Format(dataDir, clusterID string, nodeID int32, ignoreFormatted bool) (logdir.Meta, error) {
	return logdir.Format(vfs.Default, dataDir, clusterID, nodeID, ignoreFormatted)
}

// AddScram stores SCRAM credentials given as kafka-storage.sh format's
// --add-scram values (auth.ParseScramArg) in the metadata store of a
// stopped broker's data directory, in one rewrite: the way to have a first
// administrator before any SASL listener is up.
func AddScram(dataDir string, args []string) ([]string, error) {
	var alts []metadata.ScramAlteration
	var added []string
	for _, a := range args {
		user, mech, c, err := auth.ParseScramArg(a)
		if err != nil {
			return nil, err
		}
		alts = append(alts, metadata.ScramAlteration{User: user, Mechanism: mech,
			Credential: metadata.ScramCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}})
		added = append(added, user+" ("+mech+")")
	}
	if len(alts) == 0 {
		return nil, nil
	}
	store, err := metadata.OpenStore(vfs.Default, dataDir)
	if err != nil {
		return nil, err
	}
	errs, err := store.AlterScram(alts)
	if err != nil {
		return nil, err
	}
	for i, e := range errs {
		if e != nil {
			return nil, fmt.Errorf("--add-scram %s: %w", args[i], e)
		}
	}
	return added, nil
}

// RandomClusterID returns a new cluster id (`strom storage random-uuid`).
func RandomClusterID() string { return logdir.RandomUUID() }
