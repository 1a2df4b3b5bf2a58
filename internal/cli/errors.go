package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// problem is an error meant for a person: what went wrong and, after a
// dash, what to try. Every error a command returns is one of these, so
// the user sees one line and never a Go stack or a wrapped chain.
type problem struct {
	msg  string
	hint string
	err  error // the cause, for errors.Is/As
	// detail: the broker's own error message says more than msg, so
	// explain appends it.
	detail bool
}

func (p *problem) Error() string {
	if p.hint == "" {
		return p.msg
	}
	return p.msg + " — " + p.hint
}

func (p *problem) Unwrap() error { return p.err }

// usageErr is a bad flag value or argument.
func usageErr(format string, args ...any) error {
	return &problem{msg: fmt.Sprintf(format, args...)}
}

// errContext names what a request was about, so an error can say which
// topic or group it concerns.
type errContext struct {
	brokers string
	sasl    bool // SASL is configured: a dropped connection is likely bad credentials
	topic   string
	group   string
	msg     string // the broker's own error message, if it sent one
	// deleting: the topic was to be deleted, so "create it" is no hint.
	deleting bool
	// profile: the config file's profile the connection flags came from.
	profile string
}

// explain turns err into a *problem. Errors that are already problems pass
// through; Kafka error codes, network and TLS errors get a sentence and a
// hint; anything else keeps its text on one line.
func explain(err error, ec errContext) error {
	if err == nil {
		return nil
	}
	if p, ok := errors.AsType[*problem](err); ok {
		return p
	}
	p := describe(err, ec)
	p.err = err
	if p.detail && ec.msg != "" && !strings.Contains(p.msg, ec.msg) {
		// The broker's message often restates ours ("invalid config:
		// retention.ms ..."); then it alone is the better sentence.
		ours := strings.TrimSpace(p.msg[:strings.IndexAny(p.msg+`"`, `":`)])
		if strings.HasPrefix(strings.ToLower(ec.msg), strings.ToLower(ours)) {
			p.msg = ec.msg
		} else {
			p.msg += ": " + ec.msg
		}
	}
	p.msg = oneLine(p.msg)
	return p
}

func describe(err error, ec errContext) *problem {
	reach := func(why string) string { return cannotReach(ec.brokers, why) }
	setBrokers := "(set --brokers or STROM_BROKERS)"
	if ec.profile != "" {
		setBrokers = fmt.Sprintf("(the brokers of profile %q; set --brokers or STROM_BROKERS, or see \"strom profile list\")", ec.profile)
	}
	var (
		dnsErr  *net.DNSError
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		unknCA  x509.UnknownAuthorityError
		hostErr x509.HostnameError
		recErr  tls.RecordHeaderError
		eofErr  *kgo.ErrFirstReadEOF
		authErr *kadm.AuthError
		shard   *kadm.ShardErrors
		kErr    *kerr.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return &problem{msg: "interrupted"}
	case errors.Is(err, context.DeadlineExceeded):
		return &problem{msg: "timed out waiting for the cluster", hint: "raise --timeout, or check that the brokers are healthy"}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &problem{msg: reach("connection refused"), hint: "is a broker running? " + setBrokers}
	case errors.As(err, &dnsErr):
		return &problem{msg: reach(fmt.Sprintf("cannot resolve host %q", dnsErr.Name)), hint: "check the host name " + setBrokers}
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return &problem{msg: reach("no route to host"), hint: "check the address and the network " + setBrokers}
	case errors.As(err, &recErr):
		return &problem{msg: reach("the broker does not speak TLS"), hint: "drop --tls, or use the broker's TLS listener"}
	case errors.As(err, &certErr) || errors.As(err, &unknCA) || errors.As(err, &hostErr):
		return &problem{msg: reach("its TLS certificate is not trusted: " + lastPart(err)), hint: "pass the CA with --tls-ca"}
	case ec.sasl && (errors.As(err, &eofErr) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return &problem{msg: reach("the broker closed the connection"), hint: "check --sasl-user, --sasl-password and --sasl-mechanism (and whether it needs --tls)"}
	case errors.As(err, &eofErr):
		return &problem{msg: reach("the broker closed the connection"), hint: "does it need --tls or SASL (--sasl-mechanism), or is it not a Kafka listener?"}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &problem{msg: reach("no answer"), hint: "check the address and any firewall " + setBrokers}
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF):
		return &problem{msg: reach("the broker closed the connection"), hint: "is it a Kafka listener? does it need --tls or SASL?"}
	case errors.As(err, &authErr):
		return describe(authErr.Err, ec)
	case errors.As(err, &shard) && len(shard.Errs) > 0:
		return describe(shard.Errs[0].Err, ec)
	case errors.As(err, &kErr):
		return kafkaProblem(kErr, ec)
	case errors.Is(err, kgo.ErrRecordTimeout):
		return &problem{msg: "records could not be delivered in time", hint: "check the brokers, or raise --timeout"}
	case errors.Is(err, fs.ErrNotExist):
		return &problem{msg: unwrapPathErr(err).Error()}
	}
	return &problem{msg: err.Error(), detail: true}
}

func cannotReach(brokers, why string) string {
	if strings.Contains(brokers, ",") {
		return fmt.Sprintf("cannot reach any broker of %s: %s", brokers, why)
	}
	return fmt.Sprintf("cannot reach broker %s: %s", orDefault(brokers, defaultBrokers), why)
}

// kafkaProblem explains a Kafka error code.
func kafkaProblem(e *kerr.Error, ec errContext) *problem {
	topic := func(s string) string { return fmt.Sprintf(s, orDefault(ec.topic, "?")) }
	group := func(s string) string { return fmt.Sprintf(s, orDefault(ec.group, "?")) }
	switch e {
	case kerr.UnknownTopicOrPartition, kerr.UnknownTopicID:
		if ec.topic == "" {
			return &problem{msg: "topic or partition does not exist", hint: `see "strom topic list"`}
		}
		if ec.deleting {
			return &problem{msg: topic("topic %q does not exist"), hint: `see "strom topic list" (--if-exists ignores a missing topic)`}
		}
		return &problem{msg: topic("topic %q does not exist"), hint: topic(`create it with "strom topic create %s", or see "strom topic list"`)}
	case kerr.TopicAlreadyExists:
		return &problem{msg: topic("topic %q already exists"), hint: "pass --if-not-exists to ignore this"}
	case kerr.InvalidTopicException:
		return &problem{msg: topic("invalid topic name %q"), hint: "use up to 249 letters, digits, '.', '_' and '-'", detail: true}
	case kerr.TopicAuthorizationFailed:
		return &problem{msg: topic("not authorized to access topic %q"), hint: "ask for an ACL on the topic, or check --sasl-user"}
	case kerr.GroupAuthorizationFailed:
		return &problem{msg: group("not authorized to access group %q"), hint: "ask for an ACL on the group, or check --sasl-user"}
	case kerr.ClusterAuthorizationFailed:
		return &problem{msg: "not authorized for this cluster operation", hint: "ask for a cluster ACL, or check --sasl-user"}
	case kerr.TransactionalIDAuthorizationFailed:
		return &problem{msg: "not authorized to use this transactional or idempotent producer", hint: "ask for an IdempotentWrite ACL, or produce with --acks 1"}
	case kerr.SaslAuthenticationFailed:
		return &problem{msg: "authentication failed", hint: "check --sasl-user, --sasl-password and --sasl-mechanism"}
	case kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState:
		return &problem{msg: "the broker does not accept this SASL mechanism", hint: "try another --sasl-mechanism"}
	case kerr.InvalidReplicationFactor:
		// Kafka's message (and Strom's): "Replication factor: 3 larger
		// than available brokers: 1." Said once, in our words.
		if m := rfBrokersRE.FindStringSubmatch(ec.msg); m != nil {
			n, _ := strconv.Atoi(m[2])
			return &problem{msg: fmt.Sprintf("replication factor %s is more than the %s of the cluster", m[1], plural(n, "broker")), hint: fmt.Sprintf(`give --replication-factor %d or less (see "strom cluster info")`, n)}
		}
		return &problem{msg: "invalid replication factor", hint: `it cannot exceed the number of brokers (see "strom cluster info")`, detail: true}
	case kerr.InvalidPartitions:
		return &problem{msg: "invalid partition count", hint: "partitions can only be added, never removed", detail: true}
	case kerr.InvalidConfig:
		return &problem{msg: "invalid config", hint: "check the names and values given with --config or --set", detail: true}
	case kerr.PolicyViolation:
		return &problem{msg: "rejected by the cluster's policy", detail: true}
	case kerr.TopicDeletionDisabled:
		return &problem{msg: "topic deletion is disabled on this cluster", hint: "set delete.topic.enable=true on the brokers"}
	case kerr.UnsupportedVersion:
		return &problem{msg: "the broker does not support this request", hint: "it may be too old for this command"}
	case kerr.GroupIDNotFound:
		return &problem{msg: group("group %q does not exist"), hint: `see "strom group list"`}
	case kerr.NonEmptyGroup:
		return &problem{msg: group("group %q has active members"), hint: "stop its consumers first"}
	case kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress:
		return &problem{msg: group("group %q is active"), hint: "stop its consumers first"}
	case kerr.CoordinatorNotAvailable, kerr.NotCoordinator, kerr.CoordinatorLoadInProgress:
		return &problem{msg: "the group coordinator is not available", hint: "the cluster may still be starting; try again"}
	case kerr.MessageTooLarge, kerr.RecordListTooLarge:
		return &problem{msg: "record too large for the topic", hint: "raise the topic's max.message.bytes, or send smaller records"}
	case kerr.InvalidRecord:
		return &problem{msg: "the broker rejected a record as invalid", detail: true}
	case kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend:
		return &problem{msg: "not enough in-sync replicas for --acks all", hint: "check the brokers, or lower min.insync.replicas"}
	case kerr.InvalidRequiredAcks:
		return &problem{msg: "the broker rejected the --acks value"}
	case kerr.UnsupportedCompressionType:
		return &problem{msg: "the broker does not support this compression", hint: "try --compression none or gzip"}
	case kerr.ThrottlingQuotaExceeded:
		return &problem{msg: "throttled by a quota", hint: "try again later"}
	}
	msg := strings.ToLower(strings.ReplaceAll(e.Message, "_", " "))
	if e.Description != "" {
		return &problem{msg: fmt.Sprintf("%s (%s)", msg, strings.TrimSuffix(e.Description, ".")), detail: true}
	}
	return &problem{msg: msg, detail: true}
}

// flagError rewrites pflag's parse errors into our shape, naming the
// command whose help lists the flags.
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	help := fmt.Sprintf("see %q", cmd.CommandPath()+" --help")
	if m := badValueRE.FindStringSubmatch(msg); m != nil {
		name := m[2]
		if i := strings.LastIndex(name, "--"); i >= 0 {
			name = name[i:]
		}
		want := "a valid value"
		if f := cmd.Flags().Lookup(strings.TrimPrefix(name, "--")); f != nil {
			want = wantFor(f.Value.Type())
		}
		return &problem{msg: fmt.Sprintf("%s %q: want %s", name, m[1], want), hint: help, err: err}
	}
	if strings.HasPrefix(msg, "unknown shorthand flag: 'o'") && cmd.Flags().Lookup("output") != nil {
		// -o is one thing in strom, as in kcat: consume's start offset.
		return &problem{msg: "unknown flag -o", hint: "-o is consume's start offset (as in kcat); the output format is --output json", err: err}
	}
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		for _, c := range append(cmd.Commands(), siblings(cmd)...) {
			if c.Name() == name {
				return &problem{msg: "unknown flag --" + name, hint: fmt.Sprintf("did you mean %q?", c.CommandPath()), err: err}
			}
		}
		return &problem{msg: "unknown flag --" + name, hint: help, err: err}
	}
	return &problem{msg: oneLine(msg), hint: help, err: err}
}

var badValueRE = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: `)

var rfBrokersRE = regexp.MustCompile(`(?i)replication factor:? (\d+) larger than available brokers:? (\d+)`)

// plural is "1 partition", "3 partitions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func siblings(cmd *cobra.Command) []*cobra.Command {
	if cmd.HasParent() {
		return cmd.Parent().Commands()
	}
	return nil
}

func wantFor(typ string) string {
	switch typ {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint16", "uint32", "uint64":
		return "a whole number"
	case "intSlice", "int32Slice":
		return "whole numbers separated by commas"
	case "duration":
		return "a duration such as 500ms, 30s or 5m"
	case "bool":
		return "true or false"
	}
	return "a valid value"
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lastPart is the innermost text of a wrapped error chain: "x509:
// certificate signed by unknown authority" rather than every wrapper.
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "x509: "); i >= 0 {
		return s[i:]
	}
	return s
}

// unwrapPathErr drops Go's "open x: " framing for a shorter message.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}
