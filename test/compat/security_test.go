package compat

import (
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// securedBroker is a Strom with a SASL_SSL listener (SCRAM) and an SSL one
// that requires client certificates, on certificates the test makes.
type securedBroker struct {
	saslSSL, mtls string
	ca, cert, key string // PEM files: the CA, and a client certificate and key
	user, pass    string
}

func startSecuredBroker(t *testing.T) securedBroker {
	t.Helper()
	dir := t.TempDir()
	ca := testutil.NewCA(t, "compat CA")
	server := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	client := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "compat", Organization: []string{"strom"}}})
	sb := securedBroker{
		ca:   testutil.WriteFile(t, dir, "ca.pem", ca.PEM),
		cert: testutil.WriteFile(t, dir, "client.pem", client.CertPEM),
		key:  testutil.WriteFile(t, dir, "client.key", client.KeyPEM),
		user: "compat", pass: "compat-secret",
	}
	data := t.TempDir()
	if _, err := broker.AddScram(data, []string{
		fmt.Sprintf("SCRAM-SHA-256=[name=%s,password=%s]", sb.user, sb.pass),
		fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", sb.user, sb.pass),
	}); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{DataDir: data, HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler),
		Props: map[string]string{
			"ssl.keystore.location":   testutil.WriteFile(t, dir, "server.pem", server.CertPEM, server.KeyPEM),
			"ssl.truststore.location": sb.ca,
			// requested: SASL_SSL clients need no certificate, the SSL
			// test gives one and is checked (a refusal is TestTLSRefusals').
			"ssl.client.auth":                  "requested",
			"sasl.enabled.mechanisms":          "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
			"group.initial.rebalance.delay.ms": "0",
		},
		Listeners: []metadata.Listener{
			{Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"},
			{Name: "SSL", Protocol: "SSL", Addr: "127.0.0.1:0"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	sb.saslSSL, sb.mtls = b.ListenerAddr("SASL_SSL").String(), b.ListenerAddr("SSL").String()
	return sb
}

// franzOpts are franz-go's options for a listener of sb.
func (sb securedBroker) franzOpts(t *testing.T, saslSSL bool) []kgo.Opt {
	ca := testutil.NewCertPoolFromFile(t, sb.ca)
	if saslSSL {
		return []kgo.Opt{kgo.SeedBrokers(sb.saslSSL), kgo.DialTLSConfig(ca.Client(nil)),
			kgo.SASL(scram.Auth{User: sb.user, Pass: sb.pass}.AsSha512Mechanism())}
	}
	cert := testutil.LoadKeyPair(t, sb.cert, sb.key)
	return []kgo.Opt{kgo.SeedBrokers(sb.mtls), kgo.DialTLSConfig(ca.Client(&cert))}
}

// endOffset is the end of partition 0 of topic, read by franz-go.
func (sb securedBroker) endOffset(t *testing.T, topic string, saslSSL bool) int64 {
	cl, err := kgo.NewClient(sb.franzOpts(t, saslSSL)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset
}

// TestSecuredClients: kcat, confluent-kafka-python and KafkaJS produce and
// consume over SASL_SSL and over mutual TLS, on certificates made by the
// test. KafkaJS logs in with SCRAM-SHA-256; the librdkafka clients
// (Debian's librdkafka 2.0.2) with PLAIN against the same SCRAM
// credentials: librdkafka before 2.6.1 repeats its nonce in SCRAM's final
// message (librdkafka#4895), which Strom refuses as RFC 5802 and Kafka 4
// do (TestLibrdkafkaScramNonce pins that).
func TestSecuredClients(t *testing.T) {
	t.Parallel()
	sb := startSecuredBroker(t)
	rdSASL := map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN",
		"sasl.username": sb.user, "sasl.password": sb.pass, "ssl.ca.location": sb.ca}
	rdMTLS := map[string]string{"security.protocol": "SSL", "ssl.ca.location": sb.ca,
		"ssl.certificate.location": sb.cert, "ssl.key.location": sb.key}
	for _, tc := range []struct {
		name string
		addr string
		rd   map[string]string
		sasl bool
	}{{"sasl_ssl", sb.saslSSL, rdSASL, true}, {"mtls", sb.mtls, rdMTLS, false}} {
		t.Run("kcat-"+tc.name, func(t *testing.T) {
			kcat := requireTool(t, "kcat")
			topic := uniqueTopic("kcat-" + tc.name)
			var x []string
			for k, v := range tc.rd {
				x = append(x, "-X", k+"="+v)
			}
			mustRun(t, "a:1\nb:2\nc:3\n", kcat, append([]string{"-b", tc.addr, "-P", "-t", topic, "-p", "0", "-K", ":"}, x...)...)
			out := mustRun(t, "", kcat, append([]string{"-b", tc.addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n"}, x...)...)
			if got := strings.TrimSpace(string(out)); got != "a=1\nb=2\nc=3" {
				t.Fatalf("kcat read %q", got)
			}
		})
		t.Run("python-"+tc.name, func(t *testing.T) {
			python := requireTool(t, debianPython)
			if r := runClient(t, "", python, "-c", "import confluent_kafka"); r.err != nil {
				missing(t, "python3-confluent-kafka is not importable by "+debianPython)
			}
			topic := uniqueTopic("python-" + tc.name)
			cfg, _ := json.Marshal(tc.rd)
			r := runClient(t, "", python, "python/confluent_secure.py", tc.addr, topic, string(cfg))
			s, err := parseSummary(r.stdout)
			if err != nil || !s.OK || s.Consumed != s.Produced || s.Produced == 0 {
				t.Fatalf("confluent_secure.py: %v %+v\nstderr:\n%s", err, s, tail(r.stderr, 2000))
			}
			if got := sb.endOffset(t, topic, tc.sasl); got != int64(s.Produced) {
				t.Fatalf("franz-go sees end offset %d, want %d", got, s.Produced)
			}
		})
		t.Run("kafkajs-"+tc.name, func(t *testing.T) {
			node, script := nodeScript(t, "kafkajs_secure.js", "kafkajs")
			topic := uniqueTopic("kafkajs-" + tc.name)
			sec := map[string]any{"ssl": map[string]string{"ca": sb.ca}}
			if tc.sasl {
				sec["sasl"] = map[string]string{"mechanism": "scram-sha-256", "username": sb.user, "password": sb.pass}
			} else {
				sec["ssl"] = map[string]string{"ca": sb.ca, "cert": sb.cert, "key": sb.key}
			}
			cfg, _ := json.Marshal(sec)
			r := runClient(t, "", node, script, tc.addr, topic, string(cfg))
			s, err := parseSummary(r.stdout)
			if err != nil || !s.OK || s.Produced == 0 {
				t.Fatalf("kafkajs_secure.js: %v %+v\nstderr:\n%s", err, s, tail(r.stderr, 2000))
			}
			if got := sb.endOffset(t, topic, tc.sasl); got != int64(s.Produced) {
				t.Fatalf("franz-go sees end offset %d, want %d", got, s.Produced)
			}
		})
	}
}

// TestLibrdkafkaScramNonce: kcat with SCRAM-SHA-512 either logs in (a
// librdkafka with the nonce fix, 2.6.1 on) or is refused with an
// authentication failure, never anything else: Strom checks SCRAM's nonce
// as RFC 5802 says (xdg-go/scram), as Kafka 4 does, and older librdkafka
// repeats its client nonce (librdkafka#4895). Debian's 2.0.2 is refused.
func TestLibrdkafkaScramNonce(t *testing.T) {
	t.Parallel()
	kcat := requireTool(t, "kcat")
	sb := startSecuredBroker(t)
	r := runClient(t, "", kcat, "-b", sb.saslSSL, "-L", "-m", "10", "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
		"-X", "sasl.username="+sb.user, "-X", "sasl.password="+sb.pass, "-X", "ssl.ca.location="+sb.ca)
	if r.err != nil && !strings.Contains(string(r.stderr), "Authentication failed") {
		t.Fatalf("kcat SCRAM failed otherwise: %v\n%s", r.err, tail(r.stderr, 1000))
	}
	t.Logf("kcat SCRAM-SHA-512: %v", errOrOK(r.err))
}
