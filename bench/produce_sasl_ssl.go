package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// produce-1k-sasl-ssl: what security costs, issue 21's "Speed" part.
// produce-1k-acks1's workload runs through the PLAINTEXT and through the
// SASL_SSL listener of the same strom serve (a fresh one for each
// measurement, set up by a server.properties with both listeners, a
// certificate made by the scenario and a SCRAM-SHA-512 user added by
// `strom storage format --add-scram`), and SASL_SSL's MB/s is reported as a
// ratio of PLAINTEXT's. Then new connections per second over SASL_SSL, each
// a TLS handshake, a SCRAM-SHA-512 login and one request, one at a time and
// saslConnWorkers at a time.

const (
	// saslSSLGoal is the issue's: SASL_SSL at least 0.7 of PLAINTEXT,
	// with AES-GCM.
	saslSSLGoal     = 0.7
	saslUser        = "strombench"
	saslPassword    = "strombench-secret"
	saslMechanism   = "SCRAM-SHA-512"
	saslConnWorkers = 4
	plaintextName   = "PLAINTEXT"
	saslSSLName     = "SASL_SSL"
)

// saslSSLBench is the scenario's state: its certificates, the cluster id
// its brokers are formatted with, and the TLS parameters its clients'
// connections negotiated.
type saslSSLBench struct {
	e         *Env
	pki       *benchPKI
	clusterID string
	n         int // brokers started, for their directories' names

	mu         sync.Mutex
	handshakes handshakes
}

// saslBroker is a strom serve with a PLAINTEXT listener (Server.Addr, where
// the harness probes it and creates topics) and a SASL_SSL one.
type saslBroker struct {
	srv     *Server
	saslSSL string
}

func runProduceSASLSSL(ctx context.Context, e *Env) error {
	cfg := e.Config()
	pki, err := newBenchPKI(e.Dir())
	if err != nil {
		return err
	}
	b := &saslSSLBench{e: e, pki: pki, handshakes: handshakes{}}
	if b.clusterID, err = b.strom(ctx, "storage", "random-uuid"); err != nil {
		return err
	}
	spec := produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.LeaderAck(), Producers: 4}
	e.Notef("Workload (Kafka): %s, as produce-1k-acks1; over SASL_SSL each producer's connections also do a TLS handshake (kgo's Dialer with crypto/tls's defaults, the scenario's CA trusted) and a SCRAM-SHA-512 login (franz-go's sasl/scram).", spec.describe())
	e.Notef("Broker: strom serve --config server.properties (process.roles=broker,controller, log.dirs, listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL, ssl.keystore.location, sasl.enabled.mechanisms=SCRAM-SHA-512) with --set listeners=PLAINTEXT://127.0.0.1:p1,SASL_SSL://127.0.0.1:p2 (free ports); certificate: ECDSA P-256, signed by a CA the scenario made (crypto/x509); the user formatted in with `strom storage format --add-scram 'SCRAM-SHA-512=[name=%s,password=...]'` (4096 iterations, the default).", saslUser)
	e.Notef("Each measurement: a new broker on an empty data dir, the topic created through PLAINTEXT, %v of warm-up, then %v timed from the first send to the last acknowledgement, through one listener; %d round(s) per listener, rotating which goes first; the median round by MB/s of each is reported, and SASL_SSL's as a ratio of PLAINTEXT's (goal >= %gx with AES-GCM, issue 21).",
		cfg.Warmup, cfg.Duration, cfg.Rounds, saslSSLGoal)

	listeners := []string{plaintextName, saslSSLName}
	runs := map[string][]throughput{}
	for round := range cfg.Rounds {
		for i := range listeners {
			l := listeners[(round+i)%len(listeners)]
			t, err := b.produceOnce(ctx, l, spec)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, l, err)
			}
			e.Logf("round %d %s: %.1f MB/s, %.0f records/s, broker CPU %v, client CPU %v",
				round+1, l, t.MBps(), t.RecordsPerSec(), t.Broker, t.ClientCPU)
			runs[l] = append(runs[l], t)
		}
	}
	plain, plainAll := median(runs[plaintextName], "MB/s")
	secure, secureAll := median(runs[saslSSLName], "MB/s")
	hs := b.takeHandshakes()
	note := fmt.Sprintf("rounds %s; %s", secureAll, hs)
	if !hs.allGCM() {
		note += "; NOT AES-GCM: the goal is stated for AES-GCM"
	}
	e.Figure(Figure{Name: "strom " + saslSSLName, Value: secure.MBps(), Unit: "MB/s", Versus: "strom " + plaintextName, Ratio: secure.MBps() / plain.MBps(), Goal: AtLeast, Target: saslSSLGoal, Note: note})
	e.Figure(Figure{Name: "strom " + plaintextName, Value: plain.MBps(), Unit: "MB/s", Note: "rounds " + plainAll})
	costFigures(e, "strom "+saslSSLName, secure)
	costFigures(e, "strom "+plaintextName, plain)
	return b.connectionRates(ctx)
}

// strom runs the Strom program with args (a command that ends, not serve)
// and returns what it printed.
func (b *saslSSLBench) strom(ctx context.Context, args ...string) (string, error) {
	prog := b.e.Config().Strom
	cmd := exec.CommandContext(ctx, prog.Path, args...)
	cmd.Env = append(os.Environ(), prog.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("strom %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// start writes a server.properties for a new broker, formats its data
// directory with the SCRAM user and starts it.
func (b *saslSSLBench) start(ctx context.Context) (*saslBroker, error) {
	b.n++
	dataDir := filepath.Join(b.e.Dir(), fmt.Sprintf("strom-%d", b.n))
	props := dataDir + ".properties"
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	saslAddr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	// Kafka's names; the listeners' ports come with --set, once the
	// harness has chosen the PLAINTEXT one.
	file := strings.Join([]string{
		"# strombench produce-1k-sasl-ssl",
		"process.roles=broker,controller",
		"node.id=1",
		"log.dirs=" + dataDir,
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + b.pki.Keystore,
		"sasl.enabled.mechanisms=" + saslMechanism,
		"",
	}, "\n")
	if err := os.WriteFile(props, []byte(file), 0o644); err != nil {
		return nil, err
	}
	if _, err := b.strom(ctx, "storage", "format", "-t", b.clusterID, "-c", props,
		"--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", saslMechanism, saslUser, saslPassword)); err != nil {
		return nil, err
	}
	kind := Kind{Name: Strom.Name, Protocol: Kafka, Ready: probe, Args: func(addr, _ string) []string {
		return []string{"serve", "--config", props, "--http-addr", "-",
			"--set", fmt.Sprintf("listeners=%s://%s,%s://%s", plaintextName, addr, saslSSLName, saslAddr),
			"--set", fmt.Sprintf("advertised.listeners=%s://%s,%s://%s", plaintextName, addr, saslSSLName, saslAddr)}
	}}
	srv, err := b.e.startOn(ctx, kind, b.e.Config().Strom, dataDir)
	if err != nil {
		return nil, err
	}
	return &saslBroker{srv: srv, saslSSL: saslAddr}, nil
}

// produceOnce runs one timed produce through the listener named l of a
// new broker.
func (b *saslSSLBench) produceOnce(ctx context.Context, l string, spec produceSpec) (throughput, error) {
	cfg := b.e.Config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+2*time.Minute)
	defer cancel()
	br, err := b.start(ctx)
	if err != nil {
		return throughput{}, err
	}
	addr, conn := br.srv.Addr, []kgo.Opt(nil)
	if l == saslSSLName {
		addr, conn = br.saslSSL, b.secure(saslPassword)
	}
	t, err := produceTimedVia(ctx, br.srv, addr, "bench-produce", spec, cfg.Warmup, cfg.Duration, conn...)
	if err != nil {
		return throughput{}, err
	}
	return t, b.e.Stop(br.srv)
}

// secure is the options of a client of the SASL_SSL listener: TLS with
// the scenario's CA trusted, and a SCRAM-SHA-512 login with password.
func (b *saslSSLBench) secure(password string) []kgo.Opt {
	return []kgo.Opt{
		kgo.Dialer(b.dialTLS),
		kgo.SASL(scram.Auth{User: saslUser, Pass: password}.AsSha512Mechanism()),
	}
}

// dialTLS is a client's dialer: a TCP connection and a TLS handshake with
// crypto/tls's defaults, whose version and cipher suite it counts.
func (b *saslSSLBench) dialTLS(ctx context.Context, network, host string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	name, _, err := net.SplitHostPort(host)
	if err != nil {
		c.Close()
		return nil, err
	}
	tc := tls.Client(c, &tls.Config{RootCAs: b.pki.Roots, ServerName: name})
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", host, err)
	}
	st := tc.ConnectionState()
	b.mu.Lock()
	b.handshakes[tls.VersionName(st.Version)+" "+tls.CipherSuiteName(st.CipherSuite)]++
	b.mu.Unlock()
	return tc, nil
}

// handshakes counts TLS handshakes by what they negotiated: "TLS 1.3
// TLS_AES_128_GCM_SHA256".
type handshakes map[string]int64

// takeHandshakes returns the handshakes since the last call.
func (b *saslSSLBench) takeHandshakes() handshakes {
	b.mu.Lock()
	defer b.mu.Unlock()
	hs := b.handshakes
	b.handshakes = handshakes{}
	return hs
}

func (hs handshakes) total() int64 {
	var n int64
	for _, c := range hs {
		n += c
	}
	return n
}

// String names what the handshakes negotiated, with their counts.
func (hs handshakes) String() string {
	if len(hs) == 0 {
		return "no TLS handshake"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(hs)) {
		parts = append(parts, fmt.Sprintf("%s (%d handshakes)", k, hs[k]))
	}
	return "negotiated " + strings.Join(parts, ", ")
}

// allGCM reports whether there were handshakes and every one chose an
// AES-GCM suite.
func (hs handshakes) allGCM() bool {
	for k := range hs {
		if !strings.Contains(k, "_AES_") || !strings.Contains(k, "_GCM_") {
			return false
		}
	}
	return len(hs) > 0
}

// connectionRates measures new SASL_SSL connections per second on a new
// broker, each a client of its own that dials, shakes hands, logs in with
// SCRAM-SHA-512 and makes one Metadata request: back to back for Duration,
// then saslConnWorkers at once for Duration. A login with a wrong
// password is refused first, so the ones counted did authenticate.
func (b *saslSSLBench) connectionRates(ctx context.Context) error {
	cfg := b.e.Config()
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Duration+2*time.Minute)
	defer cancel()
	br, err := b.start(ctx)
	if err != nil {
		return err
	}
	if err := b.connect(ctx, br.saslSSL, "not-"+saslPassword); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		return fmt.Errorf("a login with a wrong password: %v, want %v", err, kerr.SaslAuthenticationFailed)
	}
	b.e.Notef("Connections: each a new kgo client of the SASL_SSL listener that dials, does a TLS handshake (ECDSA P-256 certificate), logs in with SCRAM-SHA-512 (4096 iterations; the client's PBKDF2 runs in the harness's process, so client CPU is most of it) and has one Metadata request (no topics) answered, then closes; for %v one at a time, then for %v %d at once. A login with a wrong password is refused with SASL_AUTHENTICATION_FAILED first. The issue states no goal for this figure: it is reported as measured.",
		cfg.Duration, cfg.Duration, saslConnWorkers)
	for _, workers := range []int{1, saslConnWorkers} {
		if err := b.connectionRate(ctx, br, workers); err != nil {
			return fmt.Errorf("%d at once: %w", workers, err)
		}
	}
	return b.e.Stop(br.srv)
}

// connectionRate makes connections from workers goroutines for Duration
// and reports the rate.
func (b *saslSSLBench) connectionRate(ctx context.Context, br *saslBroker, workers int) error {
	d := b.e.Config().Duration
	b.takeHandshakes()
	m, err := startCPU(br.srv)
	if err != nil {
		return err
	}
	var made atomic.Int64
	until := time.Now().Add(d)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for time.Now().Before(until) && ctx.Err() == nil {
				if err := b.connect(ctx, br.saslSSL, saslPassword); err != nil {
					errs[w] = err
					return
				}
				made.Add(1)
			}
		})
	}
	wg.Wait()
	wall, client, broker, err := m.stop()
	if err := errors.Join(append(errs, err, ctx.Err())...); err != nil {
		return err
	}
	n := made.Load()
	hs := b.takeHandshakes()
	if n == 0 {
		return errors.New("no connection made")
	}
	// Each connection counted must have been a new one over TLS.
	if hs.total() < n {
		return fmt.Errorf("%d connections made with %d TLS handshakes", n, hs.total())
	}
	name := "strom SCRAM conns, 1 at a time"
	if workers > 1 {
		name = fmt.Sprintf("strom SCRAM conns, %d at a time", workers)
	}
	b.e.Figure(Figure{Name: name, Value: float64(n) / wall.Seconds(), Unit: "conns/s",
		Note: fmt.Sprintf("no goal stated; %d connections in %v; per connection: broker CPU %.2f ms, client CPU %.2f ms; %s",
			n, wall.Round(time.Millisecond), float64(broker.Microseconds())/1e3/float64(n), float64(client.Microseconds())/1e3/float64(n), hs)})
	return nil
}

// connect makes one new client of the SASL_SSL listener at addr, has one
// Metadata request answered on its connection and closes it.
func (b *saslSSLBench) connect(ctx context.Context, addr, password string) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("strombench")}, b.secure(password)...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none: the connection, not the answer, is measured
	// The seed broker's own connection: one dial per client, no
	// metadata-driven routing.
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	if len(resp.(*kmsg.MetadataResponse).Brokers) == 0 {
		return errors.New("Metadata: no brokers")
	}
	return nil
}
