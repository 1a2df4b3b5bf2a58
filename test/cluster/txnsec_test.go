package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/test/internal/childbroker"
)

// startSASLCluster starts three nodes whose only client listener is
// SASL_PLAINTEXT (SCRAM-SHA-256), named by inter.broker.listener.name,
// with the brokers' own credentials in Kafka's per-listener JAAS config.
// The users broker and app are created at format time (storage format
// --add-scram, here broker.AddScram into node 3's directory, migrated into
// the metadata quorum at its first start). The test's clients log in as
// app.
func startSASLCluster(t *testing.T, extra ...string) *testCluster {
	t.Helper()
	props := append([]string{
		"offsets.topic.replication.factor=1",
		"sasl.enabled.mechanisms=SCRAM-SHA-256",
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256",
		`listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-pw";`,
	}, extra...)
	c := writeCluster(t, 3, props...)
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.file)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("=PLAINTEXT://", "=SASL_PLAINTEXT://",
			"inter.broker.listener.name=PLAINTEXT", "inter.broker.listener.name=SASL_PLAINTEXT",
			"CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT").Replace(string(b))
		if err := os.WriteFile(nd.file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Into the last node started: it migrates them into the quorum the
	// first two already form, before it listens.
	if err := os.MkdirAll(c.nodes[2].dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.AddScram(c.nodes[2].dir, []string{
		"SCRAM-SHA-256=[name=broker,password=broker-pw]", "SCRAM-SHA-256=[name=app,password=app-pw]",
	}); err != nil {
		t.Fatal(err)
	}
	c.clientOpts = []kgo.Opt{kgo.SASL(scram.Auth{User: "app", Pass: "app-pw"}.AsSha256Mechanism())}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	return c
}

// saslPipeline runs TestClusterTransactions's pipeline on a SASL cluster:
// one-replica input and output topics of three partitions (one per
// broker), a GroupTransactSession between them; the output read with
// read_committed holds each input exactly once, and some output partition
// is led by a broker other than the transaction coordinator's.
func saslPipeline(t *testing.T, c *testCluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := c.admin(c.nodes[0].kafka)
	for _, topic := range []string{"txin", "txout"} {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		c.waitLed(c.nodes[0].kafka, topic, 3)
	}
	const n = 200
	produce(t, c.seeds(), "txin", "in", n, c.clientOpts...)
	runPipeline(t, ctx, c.seeds(), "etl", "txin", "txout", n, nil, c.clientOpts...)
	got := consumeCommitted(t, c.seeds(), "txout", n, c.clientOpts...)
	for i := range n {
		if !got[fmt.Sprintf("out-in-%d", i)] {
			t.Fatalf("input in-%d has no output", i)
		}
	}
	md, err := adm.Metadata(ctx, "__transaction_state", "txout")
	if err != nil {
		t.Fatal(err)
	}
	coord, remote := md.Topics["__transaction_state"].Partitions[0].Leader, 0
	for _, p := range md.Topics["txout"].Partitions {
		if p.Leader != coord {
			remote++
		}
	}
	if remote == 0 {
		t.Fatalf("every output partition is on the coordinator's broker %d: nothing crossed brokers", coord)
	}
	t.Logf("coordinator: broker %d; %d of 3 output partitions on other brokers", coord, remote)
}

// TestClusterTxnSASL: transactions across the brokers of a cluster whose
// only client listener is SASL_PLAINTEXT: the coordinator's markers and
// the leaders' verifications go through the inter-broker client, which
// logs in as the broker's user with SCRAM-SHA-256. On main the cluster
// refused the transactional producer (TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
// the first listener was not PLAINTEXT).
func TestClusterTxnSASL(t *testing.T) {
	c := startSASLCluster(t)
	saslPipeline(t, c)
}

// TestClusterTxnSASLACLs: the same with ACLs on and the broker's user in
// super.users (the app too, to keep its own ACLs out of the test). On main
// a cluster with an authorizer refused transactional producers.
func TestClusterTxnSASLACLs(t *testing.T) {
	c := startSASLCluster(t, "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:broker;User:app")
	saslPipeline(t, c)
}

// TestClusterTxnSASLBrokerNotAllowed: ACLs on and the broker's user
// neither a super user nor allowed CLUSTER_ACTION. A transaction writing
// to partitions other brokers lead fails with an error the producer sees
// (the coordinator refuses the leaders' verification:
// CLUSTER_AUTHORIZATION_FAILED), its abort answers at once (decided once
// prepared; the refused markers are left to the coordinator's timeout
// loop), and the brokers' log says why (the peer refused this broker,
// which needs CLUSTER_ACTION); nothing waits silently. Before the fix the
// abort waited for markers the peers kept refusing (the client's request
// timed out after 30 s and the broker's shutdown hung on it).
func TestClusterTxnSASLBrokerNotAllowed(t *testing.T) {
	c := startSASLCluster(t, "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users=User:app")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := c.admin(c.nodes[0].kafka)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "txout"); err != nil {
		t.Fatal(err)
	}
	c.waitLed(c.nodes[0].kafka, "txout", 3)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("denied"),
		kgo.DefaultProduceTopic("txout"), kgo.RecordPartitioner(kgo.ManualPartitioner())}, c.clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 45*time.Second)
	defer pcancel()
	var recs []*kgo.Record
	for p := range int32(3) {
		recs = append(recs, &kgo.Record{Partition: p, Value: []byte("v")})
	}
	res := cl.ProduceSync(pctx, recs...)
	if pctx.Err() != nil {
		t.Fatalf("the transactional produce hung (%v): %v", time.Since(start), res.FirstErr())
	}
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
			t.Logf("partition %d: %v", r.Record.Partition, r.Err)
		}
	}
	if failed == 0 {
		t.Fatal("every write of the transaction succeeded: the broker's verification was not refused")
	}
	t.Logf("%d of 3 writes refused after %v", failed, time.Since(start))

	ectx, ecancel := context.WithTimeout(ctx, 45*time.Second)
	defer ecancel()
	start = time.Now()
	err = cl.EndTransaction(ectx, kgo.TryAbort)
	took := time.Since(start)
	t.Logf("abort: %v after %v", err, took)
	// Decided once prepared: the markers the peers refuse are left to the
	// coordinator's timeout loop, and the abort answers at once.
	if err != nil || took > 20*time.Second {
		t.Fatalf("the abort answered %v after %v; want it answered, not left waiting on refused markers", err, took)
	}

	waitFor(t, 30*time.Second, "a broker logs that a peer refused it", func() error {
		for _, nd := range c.nodes {
			out := nd.proc.Output()
			if strings.Contains(out, "inter-broker client refused by a peer") && strings.Contains(out, "CLUSTER_ACTION") {
				return nil
			}
		}
		return errors.New("no log line")
	})
	for _, nd := range c.nodes {
		if !strings.Contains(nd.proc.Output(), "inter-broker principal is not in super.users") {
			t.Fatalf("node %d did not warn at start that User:broker is not a super user", nd.id)
		}
	}
}

// TestClusterTxnInternalListener: inter.broker.listener.name names a
// second listener, INTERNAL (SASL_PLAINTEXT, SCRAM-SHA-256 as the broker),
// beside the clients' PLAINTEXT one. The brokers register every
// listener's address: Metadata asked on INTERNAL names each broker's
// INTERNAL address, on PLAINTEXT its PLAINTEXT one, and the inter-broker
// client dials INTERNAL. The transactional pipeline over PLAINTEXT
// completes exactly once. On main brokers registered their first
// listener's address only, and Metadata on INTERNAL named PLAINTEXT ports.
func TestClusterTxnInternalListener(t *testing.T) {
	c := writeCluster(t, 3, "offsets.topic.replication.factor=1",
		"sasl.enabled.mechanisms=SCRAM-SHA-256",
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256",
		`listener.name.internal.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-pw";`)
	internal := map[int32]string{}
	for _, nd := range c.nodes {
		internal[nd.id] = childbroker.FreeAddr(t)
		b, err := os.ReadFile(nd.file)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("listeners=PLAINTEXT://"+nd.kafka, "listeners=PLAINTEXT://"+nd.kafka+",INTERNAL://"+internal[nd.id],
			"inter.broker.listener.name=PLAINTEXT", "inter.broker.listener.name=INTERNAL",
			"CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT").Replace(string(b))
		if err := os.WriteFile(nd.file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(c.nodes[2].dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.AddScram(c.nodes[2].dir, []string{"SCRAM-SHA-256=[name=broker,password=broker-pw]"}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})

	// Metadata on each listener names the brokers' addresses on it.
	asBroker := kgo.SASL(scram.Auth{User: "broker", Pass: "broker-pw"}.AsSha256Mechanism())
	for _, side := range []struct {
		seed string
		opts []kgo.Opt
		want func(nd *node) string
	}{
		{internal[1], []kgo.Opt{asBroker}, func(nd *node) string { return internal[nd.id] }},
		{c.nodes[0].kafka, nil, func(nd *node) string { return nd.kafka }},
	} {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(side.seed)}, side.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "Metadata at "+side.seed+" names the brokers on its listener", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
			if err != nil {
				return err
			}
			at := map[int32]string{}
			for _, b := range md.Brokers {
				at[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
			}
			for _, nd := range c.nodes {
				if at[nd.id] != side.want(nd) {
					return fmt.Errorf("broker %d at %q, want %s", nd.id, at[nd.id], side.want(nd))
				}
			}
			return nil
		})
		cl.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := c.admin(c.nodes[0].kafka)
	for _, topic := range []string{"txin", "txout"} {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		c.waitLed(c.nodes[0].kafka, topic, 3)
	}
	const n = 100
	produce(t, c.seeds(), "txin", "in", n)
	runPipeline(t, ctx, c.seeds(), "etl", "txin", "txout", n, nil)
	got := consumeCommitted(t, c.seeds(), "txout", n)
	for i := range n {
		if !got[fmt.Sprintf("out-in-%d", i)] {
			t.Fatalf("input in-%d has no output", i)
		}
	}
}

// TestClusterTxnRefusedWithReason: settings that cannot make the
// inter-broker client (here Kafka's default
// sasl.mechanism.inter.broker.protocol, GSSAPI, on a SASL listener) keep
// transactions refused: InitProducerId with a transactional id answers
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED at once (fatal for the client, not
// retried), and the brokers log the reason at start and at the refusal.
func TestClusterTxnRefusedWithReason(t *testing.T) {
	c := startSASLCluster(t, "sasl.mechanism.inter.broker.protocol=GSSAPI")
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("refused")}, c.clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err = cl.BeginTransaction()
	if err == nil {
		// franz-go asks InitProducerId at the first produce.
		err = cl.ProduceSync(ctx, &kgo.Record{Topic: "any", Value: []byte("v")}).FirstErr()
	}
	if err == nil || !strings.Contains(err.Error(), "TRANSACTIONAL_ID_AUTHORIZATION_FAILED") || ctx.Err() != nil {
		t.Fatalf("transactional producer: %v after %v; want TRANSACTIONAL_ID_AUTHORIZATION_FAILED at once", err, time.Since(start))
	}
	t.Logf("refused after %v: %v", time.Since(start), err)
	const reason = "sasl.mechanism.inter.broker.protocol=GSSAPI"
	waitFor(t, 10*time.Second, "the refusal's reason logged", func() error {
		for _, nd := range c.nodes {
			if strings.Contains(nd.proc.Output(), "refusing a transactional producer") && strings.Contains(nd.proc.Output(), reason) {
				return nil
			}
		}
		return errors.New("no log line")
	})
	for _, nd := range c.nodes {
		if !strings.Contains(nd.proc.Output(), "transactions are refused in this cluster") {
			t.Fatalf("node %d did not log at start why transactions are refused", nd.id)
		}
	}
}
