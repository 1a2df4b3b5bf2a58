package broker

import (
	"context"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// TestSASLSSLThroughput measures produce throughput over SASL_SSL (SCRAM,
// TLS 1.3 AES-GCM) as a ratio of PLAINTEXT, same broker, same run: 1 KiB
// records, acks=1, 4 s each. Only with STROM_SECURITY_BENCH=1 (it is a
// measurement, not a check; the issue's goal is 0.7x).
func TestSASLSSLThroughput(t *testing.T) {
	if os.Getenv("STROM_SECURITY_BENCH") == "" {
		t.Skip("set STROM_SECURITY_BENCH=1 to measure")
	}
	ca := testutil.NewCA(t, "bench CA")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	dir := t.TempDir()
	if _, err := AddScram(dir, []string{"SCRAM-SHA-512=[name=bench,password=bench-pw]"}); err != nil {
		t.Fatal(err)
	}
	b, err := Start(Config{DataDir: dir, HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler),
		Props: map[string]string{"ssl.keystore.location": testutil.WriteFile(t, t.TempDir(), "s.pem", leaf.CertPEM, leaf.KeyPEM),
			"sasl.enabled.mechanisms": "SCRAM-SHA-512"},
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Addr: "127.0.0.1:0"},
			{Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, b)
	run := func(name string, opts ...kgo.Opt) float64 {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
			kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		topic := "bench-" + name
		val := make([]byte, 1024)
		ctx := context.Background()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: val}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		var bytes atomic.Int64
		deadline := time.Now().Add(4 * time.Second)
		start := time.Now()
		for time.Now().Before(deadline) {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: val}, func(r *kgo.Record, err error) {
				if err == nil {
					bytes.Add(int64(len(r.Value)))
				}
			})
		}
		cl.Flush(ctx)
		mbs := float64(bytes.Load()) / time.Since(start).Seconds() / 1e6
		t.Logf("%s: %.0f MB/s", name, mbs)
		return mbs
	}
	plain := run("plaintext", kgo.SeedBrokers(b.ListenerAddr("PLAINTEXT").String()))
	secure := run("sasl_ssl", kgo.SeedBrokers(b.ListenerAddr("SASL_SSL").String()), kgo.DialTLSConfig(testutil.ClientTLS(ca, nil)),
		kgo.SASL(scram.Auth{User: "bench", Pass: "bench-pw"}.AsSha512Mechanism()))
	fmt.Printf("SASL_SSL/PLAINTEXT produce throughput: %.2fx (%.0f / %.0f MB/s)\n", secure/plain, secure, plain)

	// New connections per second: a TLS handshake, SCRAM-SHA-512 (4096
	// iterations) and one Metadata request each, one after another.
	const n = 100
	start := time.Now()
	for i := 0; i < n; i++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr("SASL_SSL").String()), kgo.DialTLSConfig(testutil.ClientTLS(ca, nil)),
			kgo.SASL(scram.Auth{User: "bench", Pass: "bench-pw"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	fmt.Printf("SASL_SSL SCRAM-SHA-512 new connections: %.0f/s (%d sequential, client PBKDF2 included)\n", n/time.Since(start).Seconds(), n)
}
