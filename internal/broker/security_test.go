package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/youmark/pkcs8"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// secured is a broker with every kind of listener, made by the test with
// its own CA.
type secured struct {
	b      *Broker
	logs   *testutil.SyncBuffer // the broker's log, info and above
	ca     *testutil.CA
	dir    string // where the PEM files are
	server testutil.Leaf
	cfg    Config // how b was started (aclBroker), for restart
}

// restart stops the broker and starts it again on the same data
// directory and settings (new ports).
func (s *secured) restart(t *testing.T) {
	t.Helper()
	stop(t, s.b)
	b, err := Start(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.b = b
}

func startSecured(t *testing.T, clientAuth string, extra map[string]string) *secured {
	t.Helper()
	s := &secured{ca: testutil.NewCA(t, "strom test CA"), dir: t.TempDir()}
	s.server = s.ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	props := map[string]string{
		"ssl.keystore.location":                     testutil.WriteFile(t, s.dir, "server.pem", s.server.CertPEM, s.server.KeyPEM),
		"ssl.truststore.location":                   testutil.WriteFile(t, s.dir, "ca.pem", s.ca.PEM),
		"ssl.client.auth":                           clientAuth,
		"sasl.enabled.mechanisms":                   "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"ssl.principal.mapping.rules":               "RULE:^CN=(.*?),O=strom$/$1/L,DEFAULT",
		"connection.failed.authentication.delay.ms": "50",
	}
	for k, v := range extra {
		props[k] = v
	}
	var err error
	s.logs = &testutil.SyncBuffer{}
	s.b, err = Start(Config{
		DataDir: t.TempDir(), HTTPAddr: "-", Logger: slog.New(slog.NewTextHandler(s.logs, nil)), Props: props,
		Listeners: []metadata.Listener{
			{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"},
			{Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"},
			{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"},
			{Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, s.b) })
	return s
}

func (s *secured) addr(name string) string { return s.b.ListenerAddr(name).String() }

// roundTrip produces a record to a new topic and reads it back with opts,
// returning the first error.
func roundTrip(t *testing.T, seed string, topic string, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts = append([]kgo.Opt{kgo.SeedBrokers(seed), kgo.ConsumeTopics(topic), kgo.AllowAutoTopicCreation(),
		kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(1)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v-" + topic)}).FirstErr(); err != nil {
		return err
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		var got []string
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) > 0 {
			if got[0] != "v-"+topic {
				t.Fatalf("read %q", got)
			}
			return nil
		}
	}
}

// firstRequest sends one Metadata request for topic "refused" with opts
// and returns its error.
func firstRequest(t *testing.T, seed string, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seed), kgo.RequestRetries(0)}, opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("refused")
	req.Topics = append(req.Topics, rt)
	_, err = req.RequestWith(ctx, cl)
	return err
}

func addUser(t *testing.T, s *secured, user, password string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr("PLAINTEXT")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(context.Background(), nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: password},
		{User: user, Mechanism: kadm.ScramSha512, Iterations: 8192, Password: password},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("alter scram %s: %v", r.User, r.Err)
		}
	}
}

// TestSecuredListeners: one broker serves PLAINTEXT, SSL, SASL_PLAINTEXT
// and SASL_SSL at once, each client is given its own listener's address
// (a TLS client sent to the PLAINTEXT port would fail), and franz-go
// produces and consumes over each with every mechanism.
func TestSecuredListeners(t *testing.T) {
	s := startSecured(t, "requested", nil)
	addUser(t, s, "alice", "alice-secret")
	tlsCfg := testutil.ClientTLS(s.ca, nil)
	for _, tc := range []struct {
		name     string
		listener string
		opts     []kgo.Opt
	}{
		{"plaintext", "PLAINTEXT", nil},
		{"ssl", "SSL", []kgo.Opt{kgo.DialTLSConfig(tlsCfg)}},
		{"sasl plain", "SASL_PLAINTEXT", []kgo.Opt{kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())}},
		{"sasl scram-256", "SASL_PLAINTEXT", []kgo.Opt{kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())}},
		{"sasl scram-512", "SASL_PLAINTEXT", []kgo.Opt{kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())}},
		{"sasl_ssl scram-512", "SASL_SSL", []kgo.Opt{kgo.DialTLSConfig(tlsCfg), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())}},
		{"sasl_ssl plain", "SASL_SSL", []kgo.Opt{kgo.DialTLSConfig(tlsCfg), kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := roundTrip(t, s.addr(tc.listener), strings.ReplaceAll(tc.name, " ", "-"), tc.opts...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSASLRefusals: a wrong password, an unknown user and an unoffered
// mechanism are refused with SASL_AUTHENTICATION_FAILED (the same answer
// for the first two) or UNSUPPORTED_SASL_MECHANISM, and see no topic.
func TestSASLRefusals(t *testing.T) {
	s := startSecured(t, "none", map[string]string{"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512"})
	addUser(t, s, "alice", "alice-secret")
	for _, tc := range []struct {
		name string
		mech sasl.Mechanism
		want error
	}{
		{"plain wrong password", plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(), kerr.SaslAuthenticationFailed},
		{"plain unknown user", plain.Auth{User: "mallory", Pass: "alice-secret"}.AsMechanism(), kerr.SaslAuthenticationFailed},
		{"scram wrong password", scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism(), kerr.SaslAuthenticationFailed},
		{"scram unknown user", scram.Auth{User: "mallory", Pass: "x"}.AsSha512Mechanism(), kerr.SaslAuthenticationFailed},
		{"mechanism not offered", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(), kerr.UnsupportedSaslMechanism},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := firstRequest(t, s.addr("SASL_PLAINTEXT"), kgo.SASL(tc.mech))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.want == kerr.SaslAuthenticationFailed && time.Since(start) < 50*time.Millisecond {
				t.Fatalf("refused after %v, before connection.failed.authentication.delay.ms", time.Since(start))
			}
		})
	}
	if _, ok := s.b.Cluster().Topic("refused"); ok {
		t.Fatal("a refused client created a topic")
	}
}

// rawRequest writes one request frame (header v1) on nc.
func rawRequest(t *testing.T, nc net.Conn, req kmsg.Request, corr int32) {
	t.Helper()
	body := req.AppendTo(nil)
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// expectClosed reads until the broker closes nc, failing if it answers.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, nc)
	if n != 0 || err != nil {
		t.Fatalf("read %d bytes, %v; want the connection closed with no answer", n, err)
	}
}

// TestRequestBeforeSASLClosesConnection: a client that skips SASL on a
// SASL listener and sends Produce or Metadata gets no answer, the
// connection closes, and the server counts it; ApiVersions is served.
func TestRequestBeforeSASLClosesConnection(t *testing.T) {
	s := startSecured(t, "none", nil)
	for _, req := range []kmsg.Request{
		func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.SetVersion(4); return r }(),
		func() kmsg.Request {
			r := kmsg.NewPtrProduceRequest()
			r.SetVersion(3)
			r.Acks, r.TimeoutMillis = 1, 1000
			return r
		}(),
	} {
		before := s.b.KafkaStats().Unauthenticated
		nc, err := net.Dial("tcp", s.addr("SASL_PLAINTEXT"))
		if err != nil {
			t.Fatal(err)
		}
		av := kmsg.NewPtrApiVersionsRequest()
		rawRequest(t, nc, av, 1)
		br := bufio.NewReader(nc)
		var size [4]byte
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(br, size[:]); err != nil {
			t.Fatalf("ApiVersions before SASL: %v", err)
		}
		if _, err := io.CopyN(io.Discard, br, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
			t.Fatal(err)
		}
		rawRequest(t, nc, req, 2)
		expectClosed(t, nc)
		nc.Close()
		if got := s.b.KafkaStats().Unauthenticated; got != before+1 {
			t.Fatalf("key %d: unauthenticated closes %d, want %d", req.Key(), got, before+1)
		}
	}
}

// TestTLSRefusals: plaintext to a TLS port, a client certificate from
// another CA, an expired one and none at all where one is required are all
// refused at the handshake and counted; a good certificate is served.
func TestTLSRefusals(t *testing.T) {
	s := startSecured(t, "required", nil)
	good := s.ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "alice", Organization: []string{"strom"}}})
	expired := s.ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "old"}, NotAfter: time.Now().Add(-time.Hour)})
	other := testutil.NewCA(t, "another CA")
	foreign := other.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "alice", Organization: []string{"strom"}}})

	if err := roundTrip(t, s.addr("SSL"), "mtls-ok", kgo.DialTLSConfig(testutil.ClientTLS(s.ca, &good.TLS))); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
	}{{"no certificate", nil}, {"expired", &expired.TLS}, {"other CA", &foreign.TLS}} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.b.KafkaStats().TLSHandshakeFailures
			if err := firstRequest(t, s.addr("SSL"), kgo.DialTLSConfig(testutil.ClientTLS(s.ca, tc.cert))); err == nil {
				t.Fatal("served")
			}
			waitCounted(t, func() bool { return s.b.KafkaStats().TLSHandshakeFailures > before })
		})
	}
	t.Run("plaintext to TLS port", func(t *testing.T) {
		before := s.b.KafkaStats().TLSHandshakeFailures
		nc, err := net.Dial("tcp", s.addr("SSL"))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		rawRequest(t, nc, kmsg.NewPtrMetadataRequest(), 1)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(nc)
		if len(b) > 0 && b[0] != 0x15 { // at most a TLS alert record
			t.Fatalf("answered %q", b)
		}
		waitCounted(t, func() bool { return s.b.KafkaStats().TLSHandshakeFailures > before })
	})
	if _, ok := s.b.Cluster().Topic("refused"); ok {
		t.Fatal("a refused client created a topic")
	}
}

// waitCounted polls cond for 10 s: with TLS 1.3 the client may see its
// refusal before the server's handshake has returned and counted it.
func waitCounted(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("handshake failure not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCertificateReload: the keystore file replaced by one from a new CA
// is served to new connections without a restart.
func TestCertificateReload(t *testing.T) {
	s := startSecured(t, "none", nil)
	if err := roundTrip(t, s.addr("SSL"), "before", kgo.DialTLSConfig(testutil.ClientTLS(s.ca, nil))); err != nil {
		t.Fatal(err)
	}
	ca2 := testutil.NewCA(t, "renewed CA")
	leaf := ca2.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	testutil.WriteFile(t, s.dir, "server.pem", leaf.CertPEM, leaf.KeyPEM)
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := tls.Dial("tcp", s.addr("SSL"), testutil.ClientTLS(ca2, nil))
		if err == nil {
			nc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate not served: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // poll: the files are checked once a second
	}
	if err := roundTrip(t, s.addr("SSL"), "after", kgo.DialTLSConfig(testutil.ClientTLS(ca2, nil))); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one size-prefixed frame from br.
func readFrame(t *testing.T, nc net.Conn, br *bufio.Reader) []byte {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(br, size[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSASLUnframedV0: the flow of old clients, SaslHandshake v0 then the
// bare PLAIN token, is answered with a bare (empty) token, and the
// connection is then served; a bad bare token closes it with no answer.
func TestSASLUnframedV0(t *testing.T) {
	s := startSecured(t, "none", nil)
	addUser(t, s, "alice", "alice-secret")
	for _, tc := range []struct {
		password string
		ok       bool
	}{{"alice-secret", true}, {"wrong", false}} {
		nc, err := net.Dial("tcp", s.addr("SASL_PLAINTEXT"))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(nc)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.SetVersion(0)
		hs.Mechanism = "PLAIN"
		rawRequest(t, nc, hs, 1)
		resp := kmsg.NewPtrSASLHandshakeResponse()
		resp.SetVersion(0)
		if err := resp.ReadFrom(readFrame(t, nc, br)[4:]); err != nil || resp.ErrorCode != 0 {
			t.Fatalf("handshake: %v %d", err, resp.ErrorCode)
		}
		tok := []byte("\x00alice\x00" + tc.password)
		if _, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...)); err != nil {
			t.Fatal(err)
		}
		if !tc.ok {
			expectClosed(t, nc)
			nc.Close()
			continue
		}
		if b := readFrame(t, nc, br); len(b) != 0 {
			t.Fatalf("bare answer %q, want empty", b)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(4)
		rawRequest(t, nc, md, 2)
		if b := readFrame(t, nc, br); binary.BigEndian.Uint32(b) != 2 {
			t.Fatalf("metadata after v0 authentication: correlation %d", binary.BigEndian.Uint32(b))
		}
		nc.Close()
	}
}

// TestSASLHandshakeOnPlaintextListener: ILLEGAL_SASL_STATE, as Kafka.
func TestSASLHandshakeOnPlaintextListener(t *testing.T) {
	s := startSecured(t, "none", nil)
	err := firstRequest(t, s.addr("PLAINTEXT"), kgo.SASL(plain.Auth{User: "a", Pass: "b"}.AsMechanism()))
	if !errors.Is(err, kerr.IllegalSaslState) {
		t.Fatalf("err %v, want ILLEGAL_SASL_STATE", err)
	}
}

// TestScramCredentialAdmin: AlterUserScramCredentials and
// DescribeUserScramCredentials answer Kafka's per-user codes (KIP-554) and
// never show a salt or key.
func TestScramCredentialAdmin(t *testing.T) {
	s := startSecured(t, "none", nil)
	addUser(t, s, "alice", "alice-secret")
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr("PLAINTEXT")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	up := func(name string, mech int8, iters int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = name, mech, iters, []byte("salt"), []byte("salted")
		return u
	}
	del := func(name string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = name, mech
		return d
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		up("bob", 1, 4096), up("dup", 1, 4096), up("dup", 1, 4096), up("few", 2, 10), up("mech", 9, 4096), up("", 1, 4096),
	}
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{del("ghost", 1)}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int16{"bob": 0, "dup": kerr.DuplicateResource.Code, "few": kerr.UnacceptableCredential.Code,
		"mech": kerr.UnsupportedSaslMechanism.Code, "": kerr.UnacceptableCredential.Code, "ghost": kerr.ResourceNotFound.Code}
	if len(resp.Results) != len(want) {
		t.Fatalf("results %+v", resp.Results)
	}
	for _, r := range resp.Results {
		if c, ok := want[r.User]; !ok || c != r.ErrorCode {
			t.Errorf("user %q: code %d, want %d", r.User, r.ErrorCode, c)
		}
	}
	dreq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, r := range dresp.Results {
		users = append(users, r.User)
		if r.User == "alice" && (len(r.CredentialInfos) != 2 || r.CredentialInfos[0].Iterations != 4096 || r.CredentialInfos[1].Iterations != 8192) {
			t.Errorf("alice: %+v", r.CredentialInfos)
		}
	}
	if strings.Join(users, ",") != "alice,bob" {
		t.Fatalf("described users %v, want alice,bob", users)
	}
	for _, n := range []string{"ghost", "alice", "alice"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		dreq.Users = append(dreq.Users, u)
	}
	if dresp, err = dreq.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if len(dresp.Results) != 2 || dresp.Results[0].ErrorCode != kerr.ResourceNotFound.Code || dresp.Results[1].ErrorCode != kerr.DuplicateResource.Code {
		t.Fatalf("named describe: %+v", dresp.Results)
	}
}

// TestPerListenerSettings: listener.name.<listener>.<setting> overrides the
// ssl.* settings and sasl.enabled.mechanisms for one listener, as Kafka's:
// mTLS required on SSL while SASL_SSL clients need no certificate, and a
// SASL_PLAINTEXT listener that offers PLAIN alone.
func TestPerListenerSettings(t *testing.T) {
	s := startSecured(t, "required", map[string]string{
		"listener.name.sasl_ssl.ssl.client.auth":               "none",
		"listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
	})
	addUser(t, s, "alice", "alice-secret")
	noCert := kgo.DialTLSConfig(testutil.ClientTLS(s.ca, nil))
	if err := firstRequest(t, s.addr("SASL_SSL"), noCert, kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())); err != nil {
		t.Fatalf("SASL_SSL without a certificate: %v", err)
	}
	if err := firstRequest(t, s.addr("SSL"), noCert); err == nil {
		t.Fatal("SSL without a certificate served, want it required")
	}
	if err := firstRequest(t, s.addr("SASL_PLAINTEXT"), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())); !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Fatalf("SCRAM on a PLAIN-only listener: %v", err)
	}
	if err := firstRequest(t, s.addr("SASL_PLAINTEXT"), kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())); err != nil {
		t.Fatalf("PLAIN on the PLAIN-only listener: %v", err)
	}
	if _, err := metadata.NewBrokerConfig(map[string]string{"listener.name.sasl_ssl.log.retention.ms": "1"}); !errors.Is(err, metadata.ErrInvalidConfig) {
		t.Fatalf("a listener override of a setting listeners do not have: %v", err)
	}
}

// TestReauthentication (KIP-368): with connections.max.reauth.ms, a
// franz-go client that re-authenticates keeps producing past the session
// lifetime, and a client that does not is closed at its first request
// after the session ended.
func TestReauthentication(t *testing.T) {
	s := startSecured(t, "none", map[string]string{"connections.max.reauth.ms": "500"})
	addUser(t, s, "alice", "alice-secret")

	// The raw client: SaslHandshake v1 and SaslAuthenticate v1 with PLAIN.
	nc, err := net.Dial("tcp", s.addr("SASL_PLAINTEXT"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	rawRequest(t, nc, hs, 1)
	readFrame(t, nc, br)
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(1)
	au.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
	rawRequest(t, nc, au, 2)
	aresp := kmsg.NewPtrSASLAuthenticateResponse()
	aresp.SetVersion(1)
	if err := aresp.ReadFrom(readFrame(t, nc, br)[4:]); err != nil || aresp.ErrorCode != 0 || aresp.SessionLifetimeMillis != 500 {
		t.Fatalf("authenticate: %v code %d lifetime %d, want 0 and 500", err, aresp.ErrorCode, aresp.SessionLifetimeMillis)
	}
	authenticated := time.Now()
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(4)
	rawRequest(t, nc, md, 3)
	readFrame(t, nc, br) // served within the session

	// franz-go re-authenticates on its own and keeps producing.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr("SASL_PLAINTEXT")), kgo.AllowAutoTopicCreation(),
		kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	closedBefore := s.b.KafkaStats().Unauthenticated
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("producing across re-authentication: %v", err)
		}
	}
	if n := s.b.KafkaStats().Unauthenticated - closedBefore; n != 0 {
		t.Fatalf("%d of franz-go's connections were closed for an expired session: it did not re-authenticate", n)
	}

	// The raw client never re-authenticated: its session is over.
	time.Sleep(time.Until(authenticated.Add(600 * time.Millisecond))) // the session's lifetime itself
	before := s.b.KafkaStats().Unauthenticated
	rawRequest(t, nc, md, 4)
	expectClosed(t, nc)
	if s.b.KafkaStats().Unauthenticated != before+1 {
		t.Fatal("the expired session's close was not counted")
	}
}

// TestRefusalsLogOneLine: each refused client (wrong password, plaintext on
// a TLS port, a request before SASL) leaves one log line naming what
// happened, no stack, no password.
func TestRefusalsLogOneLine(t *testing.T) {
	s := startSecured(t, "none", nil)
	addUser(t, s, "alice", "alice-secret")
	firstRequest(t, s.addr("SASL_PLAINTEXT"), kgo.SASL(plain.Auth{User: "alice", Pass: "wrong-password-42"}.AsMechanism()))
	nc, err := net.Dial("tcp", s.addr("SSL"))
	if err != nil {
		t.Fatal(err)
	}
	rawRequest(t, nc, kmsg.NewPtrMetadataRequest(), 1)
	expectClosedOrAlert(t, nc)
	nc.Close()
	nc, err = net.Dial("tcp", s.addr("SASL_PLAINTEXT"))
	if err != nil {
		t.Fatal(err)
	}
	rawRequest(t, nc, kmsg.NewPtrMetadataRequest(), 1)
	expectClosed(t, nc)
	nc.Close()
	want := []string{"sasl: authentication failed", "TLS handshake failed", "request before SASL authentication"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := s.logs.String()
		n := 0
		for _, w := range want {
			if strings.Count(logs, w) == 1 {
				n++
			}
		}
		if n == len(want) {
			if strings.Contains(logs, "goroutine ") || strings.Contains(logs, "panic") || strings.Contains(logs, "wrong-password-42") {
				t.Fatalf("a stack, a panic or the password in the log:\n%s", logs)
			}
			for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
				if !strings.HasPrefix(line, "time=") {
					t.Fatalf("a log record over several lines: %q", line)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want one line each of %q in:\n%s", want, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectClosedOrAlert reads until the broker closes nc: at most a TLS
// alert comes back, never a Kafka answer.
func expectClosedOrAlert(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(nc)
	if len(b) > 0 && b[0] != 0x15 {
		t.Fatalf("answered %q", b)
	}
}

// TestKeysAreSensitive: a key given inline (ssl.keystore.key, a PASSWORD
// config) is described as sensitive with no value, nor in its synonyms.
func TestKeysAreSensitive(t *testing.T) {
	ca := testutil.NewCA(t, "ca")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	b, err := Start(Config{DataDir: t.TempDir(), HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler),
		Props:     map[string]string{"ssl.keystore.certificate.chain": string(leaf.CertPEM), "ssl.keystore.key": string(leaf.KeyPEM)},
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}, {Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr("PLAINTEXT").String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range resp.Resources[0].Configs {
		if c.Name != "ssl.keystore.key" && c.Name != "ssl.keystore.certificate.chain" {
			continue
		}
		found = true
		if c.Value != nil || !c.IsSensitive {
			t.Errorf("%s: value shown or not sensitive", c.Name)
		}
		for _, syn := range c.ConfigSynonyms {
			if syn.Value != nil {
				t.Errorf("%s: synonym %s shows a value", c.Name, syn.Name)
			}
		}
	}
	if !found {
		t.Fatal("ssl.keystore.key not described")
	}
}

// TestHTTPOverTLS: http.ssl.enable serves /healthz (and the console) over
// HTTPS with the Kafka listeners' certificate; plain HTTP gets nothing.
func TestHTTPOverTLS(t *testing.T) {
	ca := testutil.NewCA(t, "http CA")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	b, err := Start(Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Props: map[string]string{"http.ssl.enable": "true",
			"ssl.keystore.location": testutil.WriteFile(t, t.TempDir(), "server.pem", leaf.CertPEM, leaf.KeyPEM)}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, b)
	url := "://" + b.HTTPAddr().String() + "/healthz"
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: testutil.ClientTLS(ca, nil)}, Timeout: 10 * time.Second}
	resp, err := cl.Get("https" + url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("https /healthz: %d", resp.StatusCode)
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http" + url); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the HTTPS listener")
		}
	}
	if _, err := Start(Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Props: map[string]string{"http.ssl.enable": "true"}}); !errors.Is(err, metadata.ErrInvalidConfig) {
		t.Fatalf("http.ssl.enable without a keystore: %v", err)
	}
}

// TestEncryptedKeystore: a keystore whose key is an encrypted PKCS#8 block
// serves TLS with ssl.key.password (a client round trip over SSL), and the
// broker refuses to start without it, naming the setting.
func TestEncryptedKeystore(t *testing.T) {
	ca := testutil.NewCA(t, "ca")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	block, _ := pem.Decode(leaf.KeyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pkcs8.MarshalPrivateKey(key, []byte("keystore-secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ks := testutil.WriteFile(t, t.TempDir(), "server.pem", leaf.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}))
	listeners := []metadata.Listener{{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"}, {Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"}}
	_, err = Start(Config{DataDir: t.TempDir(), HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler),
		Props: map[string]string{"ssl.keystore.location": ks}, Listeners: listeners})
	if !errors.Is(err, metadata.ErrInvalidConfig) || !strings.Contains(err.Error(), "ssl.key.password") {
		t.Fatalf("start without ssl.key.password: %v, want ErrInvalidConfig naming it", err)
	}
	b, err := Start(Config{DataDir: t.TempDir(), HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler),
		Props: map[string]string{"ssl.keystore.location": ks, "ssl.key.password": "keystore-secret"}, Listeners: listeners})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, b)
	if err := roundTrip(t, b.ListenerAddr("SSL").String(), "encrypted-key", kgo.DialTLSConfig(testutil.ClientTLS(ca, nil))); err != nil {
		t.Fatal(err)
	}
}

// TestPlainUsersFromJAAS: a listener's PLAIN JAAS login lists users
// (Kafka's PlainLoginModule user_<name>="<password>"): they log in with
// PLAIN on that listener, a wrong password is refused, and the metadata's
// SCRAM users still log in with PLAIN too; another listener without such
// a login does not know them.
func TestPlainUsersFromJAAS(t *testing.T) {
	s := startSecured(t, "none", map[string]string{
		"listener.name.sasl_plaintext.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_device="device-pw";`,
	})
	addUser(t, s, "alice", "alice-secret")
	login := func(listener, user, pass string) error {
		opts := []kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())}
		if listener == "SASL_SSL" {
			opts = append(opts, kgo.DialTLSConfig(testutil.ClientTLS(s.ca, nil)))
		}
		return firstRequest(t, s.addr(listener), opts...)
	}
	if err := login("SASL_PLAINTEXT", "device", "device-pw"); err != nil {
		t.Fatalf("a JAAS user: %v", err)
	}
	if err := login("SASL_PLAINTEXT", "device", "nope"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a JAAS user with a wrong password: %v", err)
	}
	if err := login("SASL_PLAINTEXT", "alice", "alice-secret"); err != nil {
		t.Fatalf("a SCRAM user over PLAIN: %v", err)
	}
	if err := login("SASL_SSL", "device", "device-pw"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("the JAAS user on a listener without that login: %v", err)
	}
}
