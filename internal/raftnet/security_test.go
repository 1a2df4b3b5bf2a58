package raftnet

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/testutil"
)

// syncBuffer is a log sink safe for the transport's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mtls is a node's TLS pair as the broker builds it: the server requires
// and verifies a client certificate against the CA; the client checks the
// server against it and presents its own.
func mtls(t *testing.T, ca *testutil.CA, leaf testutil.Leaf) (server, client *tls.Config) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	server = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// secured starts nodes 0 (the dialler) and 1 (the acceptor) with cfgA and
// cfgB's security, a sending to b.
func secured(t *testing.T, cfgA, cfgB Config) (a, b node, logB *syncBuffer) {
	t.Helper()
	lnB := listen(t, "")
	logB = &syncBuffer{}
	cfgB.NodeID, cfgB.ClusterID, cfgB.Listener = 1, "c", lnB
	cfgB.Logger = slog.New(slog.NewTextHandler(logB, nil))
	b = start(t, cfgB)
	cfgA.NodeID, cfgA.ClusterID, cfgA.Listener = 0, "c", listen(t, "")
	cfgA.Peers = map[int32]string{1: lnB.Addr().String()}
	cfgA.BackoffMin, cfgA.BackoffMax = time.Millisecond, 20*time.Millisecond
	a = start(t, cfgA)
	return a, b, logB
}

// sendUntil sends to b until cond holds, failing after a deadline.
func sendUntil(t *testing.T, a node, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := uint64(1); !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: a %+v", what, a.Stats())
		}
		a.Send(1, msg(0, 1, i, nil))
		time.Sleep(5 * time.Millisecond) // pacing the sends while polling
	}
}

func TestTLSPeersAuthenticate(t *testing.T) {
	noLeak(t)
	ca := testutil.NewCA(t, "controllers")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "node"}, Server: true, ClientToo: true})
	srv, cl := mtls(t, ca, leaf)

	t.Run("signed by the truststore", func(t *testing.T) {
		a, b, _ := secured(t, Config{ServerTLS: srv, ClientTLS: cl}, Config{ServerTLS: srv, ClientTLS: cl})
		sendUntil(t, a, "a message over mTLS", func() bool { return b.in.count() > 0 })
		if s := b.Stats(); s.Refused != 0 || s.AuthFailed != 0 {
			t.Fatalf("b refused a good peer: %+v", s)
		}
	})

	t.Run("a certificate of another CA", func(t *testing.T) {
		other := testutil.NewCA(t, "intruders")
		bad := other.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "node"}, Server: true, ClientToo: true})
		_, badClient := mtls(t, other, bad)
		badClient.RootCAs = srv.ClientCAs // it trusts b, b does not trust it
		a, b, logB := secured(t, Config{ServerTLS: srv, ClientTLS: badClient}, Config{ServerTLS: srv, ClientTLS: cl})
		sendUntil(t, a, "b to refuse twice", func() bool { return b.Stats().AuthFailed >= 2 })
		if n := b.in.count(); n != 0 || b.Connected(0) {
			t.Fatalf("b delivered %d messages from a peer it does not trust (connected %v)", n, b.Connected(0))
		}
		// Logged once per peer per interval, not at every redial.
		if n := strings.Count(logB.String(), "TLS handshake failed"); n != 1 {
			t.Fatalf("%d log lines for the refused peer, want 1:\n%s", n, logB.String())
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		noCert := cl.Clone()
		noCert.Certificates = nil
		a, b, _ := secured(t, Config{ServerTLS: srv, ClientTLS: noCert}, Config{ServerTLS: srv, ClientTLS: cl})
		sendUntil(t, a, "b to refuse", func() bool { return b.Stats().AuthFailed >= 1 })
		if n := b.in.count(); n != 0 {
			t.Fatalf("b delivered %d messages from a peer with no certificate", n)
		}
	})

	t.Run("a plaintext dialler", func(t *testing.T) {
		a, b, _ := secured(t, Config{}, Config{ServerTLS: srv, ClientTLS: cl})
		sendUntil(t, a, "b to refuse", func() bool { return b.Stats().Refused >= 2 })
		if n := b.in.count(); n != 0 {
			t.Fatalf("b delivered %d messages from a plaintext peer", n)
		}
		if a.Stats().Dials != 0 {
			t.Fatalf("a counts a connection b refused: %+v", a.Stats())
		}
	})
}

// plainSASL is the broker's wiring: the dialler logs in as user; the
// acceptor checks against JAAS user_ entries (auth.CredentialsFromJAAS).
func plainSASL(t *testing.T, mech, user, password string, users map[string]string) *SASL {
	t.Helper()
	l := auth.JAASLogin{Module: "org.apache.kafka.common.security.plain.PlainLoginModule", Flag: "required", Options: map[string]string{}}
	for u, p := range users {
		l.Options["user_"+u] = p
	}
	creds, err := auth.CredentialsFromJAAS(l)
	if err != nil {
		t.Fatal(err)
	}
	return &SASL{
		Mechanism: mech,
		Client:    func() (ClientExchange, error) { return auth.NewClientExchange(mech, user, password) },
		Server: func(m string) (ServerExchange, error) {
			if m != mech {
				return nil, errors.New("mechanism not enabled")
			}
			return auth.NewExchange(m, creds, nil)
		},
	}
}

func TestSASLPeersAuthenticate(t *testing.T) {
	noLeak(t)
	users := map[string]string{"ctrl": "right-pw"}
	for _, mech := range []string{auth.PLAIN, auth.ScramSHA256, auth.ScramSHA512} {
		t.Run(mech+" right password", func(t *testing.T) {
			a, b, _ := secured(t, Config{SASL: plainSASL(t, mech, "ctrl", "right-pw", users)}, Config{SASL: plainSASL(t, mech, "ctrl", "right-pw", users)})
			sendUntil(t, a, "a message after "+mech, func() bool { return b.in.count() > 0 })
			if s := b.Stats(); s.Refused != 0 {
				t.Fatalf("refused: %+v", s)
			}
		})
		t.Run(mech+" wrong password", func(t *testing.T) {
			a, b, logB := secured(t, Config{SASL: plainSASL(t, mech, "ctrl", "wrong-pw-123", users)}, Config{SASL: plainSASL(t, mech, "ctrl", "right-pw", users)})
			sendUntil(t, a, "b to refuse twice", func() bool { return b.Stats().AuthFailed >= 2 })
			if n := b.in.count(); n != 0 || b.Connected(0) {
				t.Fatalf("b delivered %d messages from a peer with a wrong password", n)
			}
			if strings.Contains(logB.String(), "wrong-pw-123") || strings.Contains(logB.String(), "right-pw") {
				t.Fatalf("a password in the log:\n%s", logB.String())
			}
		})
	}
	t.Run("no SASL at a SASL listener", func(t *testing.T) {
		a, b, _ := secured(t, Config{}, Config{SASL: plainSASL(t, auth.PLAIN, "ctrl", "right-pw", users)})
		sendUntil(t, a, "b to refuse", func() bool { return b.Stats().AuthFailed >= 1 })
		if b.in.count() != 0 {
			t.Fatal("delivered without SASL")
		}
	})
}

// A dialler refused for its credentials learns "authentication failed"
// and nothing about which part: an unknown user reads like a wrong
// password.
func TestRefusalSaysNothingSpecific(t *testing.T) {
	noLeak(t)
	users := map[string]string{"ctrl": "right-pw"}
	lnB := listen(t, "")
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB, SASL: plainSASL(t, auth.PLAIN, "ctrl", "right-pw", users)})
	reasons := map[string]string{}
	for name, user := range map[string]string{"wrong password": "ctrl", "unknown user": "nobody"} {
		c, err := net.Dial("tcp", lnB.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		out := appendHello(nil, hello{Node: 0, Incarnation: 1, Mechanism: auth.PLAIN, Cluster: "c"})
		out = appendAuth(out, []byte("\x00"+user+"\x00bad"))
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		body, err := readFrame(c, handshakeMaxFrame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v, err := decodeVerdict(body)
		if err != nil || v.Code != verdictRefused {
			t.Fatalf("%s: verdict %+v, %v", name, v, err)
		}
		reasons[name] = v.Reason
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("%s: want the connection closed: %v", name, err)
		}
		c.Close()
	}
	if reasons["wrong password"] != reasons["unknown user"] || reasons["unknown user"] != genericRefusal {
		t.Fatalf("reasons differ or say too much: %q", reasons)
	}
	if s := b.Stats(); s.AuthFailed != 2 || s.Delivered != 0 {
		t.Fatalf("b: %+v", s)
	}
}

// A node of an older Strom sends the hello of version 1: it is refused,
// and the log says why.
func TestOldHelloRefused(t *testing.T) {
	noLeak(t)
	lnB := listen(t, "")
	logB := &syncBuffer{}
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB, Logger: slog.New(slog.NewTextHandler(logB, nil))})
	c, err := net.Dial("tcp", lnB.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	old := sealFrame([]byte{0, 0, 0, 0, 0, 0, 0, 0, kindHelloV1, 0, 0, 0, 0, 0, 1, 'c'}, 0)
	old = append(old, appendBatch(nil, []entry{{Group: 1, Msg: mustMarshal(t, msg(0, 1, 1, nil))}})...)
	if _, err := c.Write(old); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("want the connection closed: %v", err)
	}
	waitFor(t, "the refusal counted", func() bool { return b.Stats().Refused == 1 })
	if b.in.count() != 0 || !strings.Contains(logB.String(), "older Strom") {
		t.Fatalf("delivered %d; log:\n%s", b.in.count(), logB.String())
	}
}
