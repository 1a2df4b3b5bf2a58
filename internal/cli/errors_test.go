package cli

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/testutil"
)

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	port, err := testutil.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// TestUnreachable: every command fails fast, in one line, naming the
// address and what to do.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	want := "strom: cannot reach broker " + addr + ": connection refused — is a broker running? (set --brokers or STROM_BROKERS)\n"
	for _, args := range [][]string{
		{"topic", "list"},
		{"topic", "create", "x"},
		{"topic", "describe", "x"},
		{"consume", "x"},
		{"produce", "x"},
		{"group", "list"},
		{"cluster", "info"},
	} {
		r := runStrom(t, []string{"STROM_BROKERS=" + addr}, strings.NewReader("a\n"), args...)
		if r.code != 1 || r.stderr != want || r.stdout != "" {
			t.Errorf("strom %s: exit %d\nstderr %q\nwant   %q", strings.Join(args, " "), r.code, r.stderr, want)
		}
		if r.took > 5*time.Second {
			t.Errorf("strom %s: took %s to fail", strings.Join(args, " "), r.took)
		}
	}
	// The flag wins over the environment, and several brokers are named.
	other := closedAddr(t)
	r := runStrom(t, []string{"STROM_BROKERS=localhost:1"}, nil, "topic", "list", "--brokers", addr+","+other)
	same(t, "two brokers", r.stderr, "strom: cannot reach any broker of "+addr+","+other+": connection refused — is a broker running? (set --brokers or STROM_BROKERS)\n")
	r = runStrom(t, nil, nil, "topic", "list", "--bootstrap-server", "no-such-host.invalid:9092")
	same(t, "unknown host", r.stderr, "strom: cannot reach broker no-such-host.invalid:9092: cannot resolve host \"no-such-host.invalid\" — check the host name (set --brokers or STROM_BROKERS)\n")
	r = runStrom(t, nil, nil, "topic", "list", "--brokers", "http://localhost:9092")
	same(t, "a URL", r.stderr, "strom: --brokers \"http://localhost:9092\": want host:port, without a scheme\n")
}

// TestNotKafka: a listener that closes every connection at once, and one
// that never answers.
func TestNotKafka(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	r := runStrom(t, []string{"STROM_BROKERS=" + silent.Addr().String()}, nil, "topic", "list")
	same(t, "silent listener", r.stderr, "strom: cannot reach broker "+silent.Addr().String()+": no answer within 6s — is it a Kafka listener, and does it need --tls? (set --brokers or STROM_BROKERS)\n")
	if r.took > 8*time.Second {
		t.Fatalf("silent listener: took %s to fail", r.took)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	r = runStrom(t, []string{"STROM_BROKERS=" + addr}, nil, "topic", "list")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "strom: cannot reach broker "+addr+": the broker closed the connection — ") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r.took > 10*time.Second {
		t.Fatalf("took %s to fail", r.took)
	}
}

// TestPermissions runs against a kfake cluster with SASL and ACLs: alice
// may read and describe topic "open" and group "mine", and nothing else.
func TestPermissions(t *testing.T) {
	t.Parallel()
	allow := func(typ kmsg.ACLResourceType, name string, op kmsg.ACLOperation) kfake.ACL {
		return kfake.ACL{Resource: typ, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true}
	}
	c := startKfake(t, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin-pw"),
		kfake.User("PLAIN", "alice", "alice-pw",
			allow(kmsg.ACLResourceTypeTopic, "open", kmsg.ACLOperationRead),
			allow(kmsg.ACLResourceTypeTopic, "open", kmsg.ACLOperationDescribe),
			allow(kmsg.ACLResourceTypeGroup, "mine", kmsg.ACLOperationRead)))
	admin := []string{"--sasl-mechanism", "PLAIN", "--sasl-user", "admin", "--sasl-password", "admin-pw"}
	alice := []string{"STROM_SASL_MECHANISM=PLAIN", "STROM_SASL_USER=alice", "STROM_SASL_PASSWORD=alice-pw"}
	as := func(env []string, in string, args ...string) result {
		return runStrom(t, append([]string{"STROM_BROKERS=" + c.addr}, env...), strings.NewReader(in), args...)
	}
	c.ok(t, nil, append([]string{"topic", "create", "open", "secret", "-p", "1"}, admin...)...)
	c.ok(t, strings.NewReader("hello\n"), append([]string{"produce", "open"}, admin...)...)

	r := as(alice, "", "consume", "open", "--from-beginning", "-e")
	same(t, "allowed", r.stdout+r.stderr, "hello\n")
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{alice, []string{"consume", "secret"}, "strom: not authorized to access topic \"secret\" — ask for an ACL on the topic, or check --sasl-user\n"},
		{alice, []string{"topic", "describe", "secret"}, "strom: not authorized to access topic \"secret\" — ask for an ACL on the topic, or check --sasl-user\n"},
		{alice, []string{"topic", "create", "new"}, "strom: not authorized to access topic \"new\" — ask for an ACL on the topic, or check --sasl-user\n"},
		{alice, []string{"produce", "open", "--acks", "1"}, "strom: 1 of 1 records failed: not authorized to access topic \"open\" — ask for an ACL on the topic, or check --sasl-user\n"},
		{alice, []string{"produce", "open"}, "strom: 1 of 1 records failed: not authorized to produce idempotently — ask for the IdempotentWrite ACL on the cluster, or produce with --acks 1\n"},
		{alice, []string{"group", "describe", "theirs"}, "strom: not authorized to access group \"theirs\" — ask for an ACL on the group, or check --sasl-user\n"},
		{[]string{"STROM_SASL_MECHANISM=PLAIN", "STROM_SASL_USER=alice", "STROM_SASL_PASSWORD=wrong"}, []string{"topic", "list"},
			// kfake drops the connection on bad credentials; Kafka
			// answers SASL_AUTHENTICATION_FAILED (see TestExplain).
			"strom: cannot reach broker " + c.addr + ": the broker closed the connection — check --sasl-user, --sasl-password and --sasl-mechanism (and whether it needs --tls)\n"},
		{nil, []string{"topic", "list", "--sasl-mechanism", "GSSAPI"}, "strom: --sasl-mechanism \"GSSAPI\": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512\n"},
	} {
		r := as(tc.env, "x\n", tc.args...)
		if r.code != 1 || r.stderr != tc.want {
			t.Errorf("strom %s: exit %d\nstderr %q\nwant   %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	// Without SASL the cluster drops the connection: say what may be missing.
	r = as(nil, "", "topic", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "SASL") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("no SASL: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		err  error
		ec   errContext
		want string
	}{
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), errContext{}, "cannot reach broker localhost:9092: connection refused — is a broker running? (set --brokers or STROM_BROKERS)"},
		{kerr.UnknownTopicOrPartition, errContext{topic: "t"}, `topic "t" does not exist — create it with "strom topic create t", or see "strom topic list"`},
		{kerr.InvalidConfig, errContext{msg: "invalid config: retention.ms: not a number"}, "invalid config: retention.ms: not a number — check the names and values given with --config or --set"},
		{kerr.InvalidReplicationFactor, errContext{msg: "3 > 1 brokers"}, `invalid replication factor: 3 > 1 brokers — it cannot exceed the number of brokers (see "strom cluster info")`},
		// Kafka's (and Strom's) message, said once (issue 23).
		{kerr.InvalidReplicationFactor, errContext{msg: "Replication factor: 3 larger than available brokers: 1."}, `replication factor 3 is more than the 1 broker of the cluster — give --replication-factor 1 or less (see "strom cluster info")`},
		{kerr.InvalidReplicationFactor, errContext{msg: "replication factor: 5 larger than available brokers: 3"}, `replication factor 5 is more than the 3 brokers of the cluster — give --replication-factor 3 or less (see "strom cluster info")`},
		{kerr.UnknownTopicOrPartition, errContext{topic: "t", deleting: true}, `topic "t" does not exist — see "strom topic list" (--if-exists ignores a missing topic)`},
		{kerr.TopicAlreadyExists, errContext{topic: "t", msg: "topic already exists"}, `topic "t" already exists — pass --if-not-exists to ignore this`},
		{kerr.SaslAuthenticationFailed, errContext{}, "authentication failed — check --sasl-user, --sasl-password and --sasl-mechanism"},
		{kerr.OffsetMetadataTooLarge, errContext{}, "offset metadata too large (The metadata field of the offset request was too large)"},
		{errors.New("two\nlines"), errContext{}, "two lines"},
		{&problem{msg: "as is", hint: "kept"}, errContext{}, "as is — kept"},
	} {
		if got := explain(tc.err, tc.ec).Error(); got != tc.want {
			t.Errorf("explain(%v):\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
}
