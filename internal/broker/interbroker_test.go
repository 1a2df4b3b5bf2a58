package broker

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

const (
	plainJAAS = `org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-pw";`
	scramJAAS = `org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-pw";`
)

// TestInterBrokerSettings: every listener protocol and SASL mechanism the
// inter-broker client serves, and a clear error (naming the setting,
// never the password) for what it cannot.
func TestInterBrokerSettings(t *testing.T) {
	ca := testutil.NewCA(t, "inter-broker CA")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true, ClientToo: true})
	dir := t.TempDir()
	keystore := testutil.WriteFile(t, dir, "broker.pem", leaf.CertPEM, leaf.KeyPEM)
	truststore := testutil.WriteFile(t, dir, "ca.pem", ca.PEM)
	tlsProps := map[string]string{"ssl.keystore.location": keystore, "ssl.truststore.location": truststore}
	one := func(name, proto string) []metadata.Listener {
		return []metadata.Listener{{Name: name, Protocol: proto, Addr: "127.0.0.1:0"}}
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := maps.Clone(base)
		if out == nil {
			out = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	sasl := func(mech, jaasKey, jaas string) map[string]string {
		return map[string]string{"inter.broker.listener.name": "SASL_PLAINTEXT", "sasl.mechanism.inter.broker.protocol": mech,
			"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", jaasKey: jaas}
	}
	cases := []struct {
		name      string
		props     map[string]string
		listeners []metadata.Listener
		wantMech  string // "" no SASL
		wantTLS   bool
		wantErr   string // "" ok
	}{
		{name: "default PLAINTEXT", props: nil, listeners: nil},
		{name: "PLAINTEXT named", props: map[string]string{"inter.broker.listener.name": "INTERNAL"}, listeners: one("INTERNAL", "PLAINTEXT")},
		{name: "SSL", props: with(tlsProps, "inter.broker.listener.name", "SSL"), listeners: one("SSL", "SSL"), wantTLS: true},
		{name: "SASL PLAIN per listener", props: sasl("PLAIN", "listener.name.sasl_plaintext.plain.sasl.jaas.config", plainJAAS),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantMech: "PLAIN"},
		{name: "SASL SCRAM-SHA-256 per listener", props: sasl("SCRAM-SHA-256", "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config", scramJAAS),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantMech: "SCRAM-SHA-256"},
		{name: "SASL SCRAM-SHA-512 global", props: sasl("SCRAM-SHA-512", "sasl.jaas.config", scramJAAS),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantMech: "SCRAM-SHA-512"},
		{name: "SASL_SSL SCRAM", props: with(tlsProps, "inter.broker.listener.name", "SASL_SSL", "sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512",
			"sasl.enabled.mechanisms", "SCRAM-SHA-512", "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", scramJAAS),
			listeners: one("SASL_SSL", "SASL_SSL"), wantMech: "SCRAM-SHA-512", wantTLS: true},

		{name: "no such listener", props: nil, listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"),
			wantErr: "inter.broker.listener.name=PLAINTEXT names none of the listeners (SASL_PLAINTEXT)"},
		{name: "not the first listener", props: with(sasl("SCRAM-SHA-256", "sasl.jaas.config", scramJAAS), "inter.broker.listener.name", "B"),
			listeners: append(one("A", "PLAINTEXT"), one("B", "SASL_PLAINTEXT")...), wantMech: "SCRAM-SHA-256"},
		{name: "GSSAPI default", props: map[string]string{"inter.broker.listener.name": "SASL_PLAINTEXT", "sasl.enabled.mechanisms": "PLAIN"},
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantErr: "sasl.mechanism.inter.broker.protocol=GSSAPI"},
		{name: "OAUTHBEARER", props: sasl("OAUTHBEARER", "sasl.jaas.config", scramJAAS), listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"),
			wantErr: "sasl.mechanism.inter.broker.protocol=OAUTHBEARER"},
		{name: "mechanism not enabled", props: with(sasl("SCRAM-SHA-256", "sasl.jaas.config", scramJAAS), "sasl.enabled.mechanisms", "PLAIN"),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantErr: "is not among listener SASL_PLAINTEXT's sasl.enabled.mechanisms (PLAIN)"},
		{name: "no JAAS", props: sasl("SCRAM-SHA-256", "sasl.jaas.config", scramJAAS), listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"),
			wantErr: ""}, // replaced below: delete the JAAS key
		{name: "JAAS for another mechanism", props: sasl("SCRAM-SHA-256", "listener.name.sasl_plaintext.plain.sasl.jaas.config", plainJAAS),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantErr: "neither listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config nor sasl.jaas.config"},
		{name: "JAAS of another module", props: sasl("SCRAM-SHA-256", "sasl.jaas.config", plainJAAS),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantErr: "sasl.jaas.config: jaas config: login module org.apache.kafka.common.security.plain.PlainLoginModule does not serve SCRAM-SHA-256"},
		{name: "JAAS unterminated", props: sasl("PLAIN", "listener.name.sasl_plaintext.plain.sasl.jaas.config",
			`org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-pw`),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantErr: `listener.name.sasl_plaintext.plain.sasl.jaas.config: jaas config: login module org.apache.kafka.common.security.plain.PlainLoginModule: option "password": unterminated quoted value`},
		{name: "JAAS without ;", props: sasl("PLAIN", "sasl.jaas.config", strings.TrimSuffix(plainJAAS, ";")),
			listeners: one("SASL_PLAINTEXT", "SASL_PLAINTEXT"), wantErr: "sasl.jaas.config: jaas config: login module org.apache.kafka.common.security.plain.PlainLoginModule: missing ';'"},
		{name: "SSL without keystore", props: map[string]string{"inter.broker.listener.name": "SSL"}, listeners: one("SSL", "SSL"),
			wantErr: "listener SSL: TLS: tls config: a TLS listener needs ssl.keystore.location"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "no JAAS" {
				delete(c.props, "sasl.jaas.config")
				c.wantErr = "neither listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config nor sasl.jaas.config gives the broker's credentials"
			}
			bc, err := metadata.NewBrokerConfig(c.props)
			if err != nil {
				t.Fatal(err)
			}
			ls := c.listeners
			if ls == nil {
				ls = listenersOrDefault(Config{KafkaAddr: ":9092"})
			}
			ib, err := newInterBroker(bc, ls)
			if c.wantErr != "" {
				if err == nil || !errors.Is(err, errNoInterBroker) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want an errNoInterBroker containing %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "broker-pw") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ib.mechanism != c.wantMech || (ib.tls != nil) != c.wantTLS {
				t.Fatalf("mechanism %q tls %v, want %q %v", ib.mechanism, ib.tls != nil, c.wantMech, c.wantTLS)
			}
			if c.wantMech != "" && (ib.user != "broker" || ib.password != "broker-pw" || ib.principal() != "User:broker") {
				t.Fatalf("credentials %q/%q principal %s", ib.user, ib.password, ib.principal())
			}
			if strings.Contains(ib.String(), "broker-pw") {
				t.Fatalf("String shows the password: %s", ib)
			}
			if c.wantTLS && ib.tls.RootCAs == nil {
				t.Fatal("no truststore in the client's TLS config")
			}
		})
	}
}

// TestInterBrokerClientConnects: the options the inter-broker client is
// made with reach a broker's listener of each kind: SSL and SASL_SSL with
// a required client certificate (the broker's own, mTLS), SASL_PLAINTEXT
// with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; a wrong password is refused.
func TestInterBrokerClientConnects(t *testing.T) {
	s := startSecured(t, "required", nil)
	addUser(t, s, "broker", "broker-pw")
	peer := s.ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "broker-2", Organization: []string{"strom"}}, Server: true, ClientToo: true})
	tlsProps := map[string]string{
		"ssl.keystore.location":   testutil.WriteFile(t, s.dir, "peer.pem", peer.CertPEM, peer.KeyPEM),
		"ssl.truststore.location": testutil.WriteFile(t, s.dir, "peer-ca.pem", s.ca.PEM),
		"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
	}
	type tc struct {
		listener, mech, jaas string
		wantErr              bool
	}
	cases := []tc{
		{listener: "SSL"},
		{listener: "SASL_SSL", mech: "SCRAM-SHA-512", jaas: scramJAAS},
		{listener: "SASL_PLAINTEXT", mech: "PLAIN", jaas: plainJAAS},
		{listener: "SASL_PLAINTEXT", mech: "SCRAM-SHA-256", jaas: scramJAAS},
		{listener: "SASL_PLAINTEXT", mech: "SCRAM-SHA-512", jaas: scramJAAS},
		{listener: "SASL_PLAINTEXT", mech: "SCRAM-SHA-256", jaas: strings.Replace(scramJAAS, "broker-pw", "wrong", 1), wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.listener+"-"+c.mech, func(t *testing.T) {
			props := maps.Clone(tlsProps)
			props["inter.broker.listener.name"] = c.listener
			if c.mech != "" {
				props["sasl.mechanism.inter.broker.protocol"] = c.mech
				props["listener.name."+strings.ToLower(c.listener)+"."+strings.ToLower(c.mech)+".sasl.jaas.config"] = c.jaas
			}
			bc, err := metadata.NewBrokerConfig(props)
			if err != nil {
				t.Fatal(err)
			}
			ib, err := newInterBroker(bc, []metadata.Listener{{Name: c.listener, Protocol: c.listener, Addr: "127.0.0.1:0"}})
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(append(ib.opts(), kgo.SeedBrokers(s.addr(c.listener)), kgo.RequestRetries(0))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
			if c.wantErr != (err != nil) {
				t.Fatalf("ApiVersions over %s %s: %v (want an error: %v)", c.listener, c.mech, err, c.wantErr)
			}
			if c.wantErr && refusal(err) == "" {
				t.Fatalf("a refused login is not logged as a refusal: %v", err)
			}
		})
	}
}
