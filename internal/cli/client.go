package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

const defaultBrokers = "localhost:9092"

// dialTimeout bounds one connection attempt, so that an address that drops
// packets fails in seconds rather than kgo's default ten; pingTimeout
// bounds the first exchange with the cluster.
const (
	dialTimeout = 5 * time.Second
	pingTimeout = 6 * time.Second
)

// connFlags are the flags every Kafka-speaking command shares: where the
// cluster is and how to authenticate to it.
type connFlags struct {
	brokers       string
	timeout       time.Duration
	clientID      string
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsSkipVerify bool
	saslMechanism string
	saslUser      string
	saslPassword  string
	saslToken     bool     // user and password are a delegation token's id and HMAC
	zookeeper     string   // accepted only to explain that it is not needed
	profile       string   // --profile: the config file's profile to use
	xprops        []string // -X key=value client properties

	fs          *pflag.FlagSet // where the flags above are registered
	resolved    bool           // resolve has run (profile.go)
	profileName string         // the profile in use, if any
	// brokersExplicit: --brokers came from the command line, -X or
	// STROM_BROKERS, not from the profile.
	brokersExplicit bool
}

func (c *connFlags) register(f *pflag.FlagSet) {
	f.StringVarP(&c.brokers, "brokers", "b", EnvOr("brokers", defaultBrokers),
		"comma-separated host:port list of brokers to bootstrap from (env STROM_BROKERS; also --bootstrap-server, --broker-list)")
	f.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long to keep retrying a request (or a record's delivery) before failing")
	f.StringVar(&c.clientID, "client-id", "strom", "client id sent to the brokers")
	f.BoolVar(&c.tls, "tls", EnvOr("tls", "") == "true", "connect with TLS (env STROM_TLS=true)")
	f.StringVar(&c.tlsCA, "tls-ca", EnvOr("tls-ca", ""), "PEM file of CA certificates to trust (implies --tls)")
	f.StringVar(&c.tlsCert, "tls-cert", EnvOr("tls-cert", ""), "PEM client certificate for mutual TLS (implies --tls)")
	f.StringVar(&c.tlsKey, "tls-key", EnvOr("tls-key", ""), "PEM client key for mutual TLS")
	f.BoolVar(&c.tlsSkipVerify, "tls-skip-verify", false, "do not verify the brokers' certificates (testing only)")
	f.StringVar(&c.saslMechanism, "sasl-mechanism", EnvOr("sasl-mechanism", ""), "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env STROM_SASL_MECHANISM)")
	f.StringVar(&c.saslUser, "sasl-user", EnvOr("sasl-user", ""), "SASL user name (env STROM_SASL_USER)")
	f.StringVar(&c.saslPassword, "sasl-password", "", "SASL password (better: env STROM_SASL_PASSWORD, which keeps it out of ps)")
	f.BoolVar(&c.saslToken, "sasl-token", EnvOr("sasl-token", "") == "true", "log in with a delegation token (SCRAM only): --sasl-user is the token id, the password its HMAC in base64 (env STROM_SASL_TOKEN=true; see strom token)")
	f.StringVar(&c.zookeeper, "zookeeper", "", "not used: Strom and Kafka 3+ are reached through --brokers")
	f.StringVar(&c.profile, "profile", EnvOr("profile", ""), "connection profile from the config file (env STROM_PROFILE; see strom profile)")
	f.StringArrayVarP(&c.xprops, "client-property", "X", nil, "Kafka client property key=value, as kcat takes it: bootstrap.servers, security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, ... (repeatable)")
	c.fs = f
	f.MarkHidden("zookeeper")
}

// seeds splits --brokers, adding Kafka's default port where none is given.
func (c *connFlags) seeds() ([]string, error) {
	var out []string
	for _, s := range strings.Split(c.brokers, ",") {
		s = strings.TrimSpace(s)
		s = strings.TrimPrefix(s, "PLAINTEXT://")
		if s == "" {
			continue
		}
		if strings.Contains(s, "://") {
			return nil, usageErr("--brokers %q: want host:port, without a scheme", s)
		}
		if !strings.Contains(s, ":") || strings.HasSuffix(s, "]") {
			s += ":9092"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, usageErr("--brokers is empty: want host:port[,host:port...]")
	}
	return out, nil
}

// opts builds the kgo options for the connection flags.
func (c *connFlags) opts() ([]kgo.Opt, error) {
	if c.zookeeper != "" {
		return nil, &problem{
			msg:  "--zookeeper is not used: clients talk to the brokers directly",
			hint: "pass the broker's Kafka address instead, e.g. --bootstrap-server localhost:9092",
		}
	}
	if err := c.resolve(); err != nil {
		return nil, err
	}
	seeds, err := c.seeds()
	if err != nil {
		return nil, err
	}
	if c.timeout <= 0 {
		return nil, usageErr("--timeout %s: want a positive duration such as 30s", c.timeout)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(c.clientID),
		kgo.SoftwareNameAndVersion("strom", softwareVersion()),
		kgo.DialTimeout(dialTimeout),
		kgo.RetryTimeout(c.timeout),
		kgo.RequestRetries(5),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	if tc, err := c.tlsConfig(); err != nil {
		return nil, err
	} else if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.saslPassword == "" {
		// Read here, not as the flag's default, so --help never shows it.
		c.saslPassword = os.Getenv("STROM_SASL_PASSWORD")
	}
	m := strings.ToUpper(c.saslMechanism)
	if c.saslToken && !strings.HasPrefix(m, "SCRAM-") {
		return nil, usageErr("--sasl-token needs --sasl-mechanism SCRAM-SHA-256 or SCRAM-SHA-512 (delegation tokens log in with SCRAM)")
	}
	switch m {
	case "":
		if c.saslUser != "" {
			return nil, usageErr("--sasl-user needs --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.saslUser, Pass: c.saslPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.saslUser, Pass: c.saslPassword, IsToken: c.saslToken}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.saslUser, Pass: c.saslPassword, IsToken: c.saslToken}.AsSha512Mechanism()))
	default:
		return nil, usageErr("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.saslMechanism)
	}
	return opts, nil
}

func (c *connFlags) tlsConfig() (*tls.Config, error) {
	if !c.tls && c.tlsCA == "" && c.tlsCert == "" && !c.tlsSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.tlsSkipVerify} //nolint:gosec // opt-in flag
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, &problem{msg: fmt.Sprintf("--tls-ca: %v", unwrapPathErr(err))}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &problem{msg: fmt.Sprintf("--tls-ca %s: no PEM certificates in the file", c.tlsCA)}
		}
	}
	if c.tlsCert != "" || c.tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, &problem{msg: fmt.Sprintf("--tls-cert/--tls-key: %v", err), hint: "both must be PEM files"}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// client connects to the cluster and checks that a broker answers, so that
// a wrong address fails now, in one readable line, rather than after the
// retries of the first real request.
func (c *connFlags) client(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, &problem{msg: err.Error(), hint: "check the flags"}
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	// kgo does not abandon a connection's first exchange when the context
	// ends, so wait for the ping here, bounded by the context.
	pinged := make(chan error, 1)
	go func() { pinged <- cl.Ping(pctx) }()
	select {
	case err = <-pinged:
	case <-pctx.Done():
		err = pctx.Err()
	}
	if err != nil {
		go cl.Close() // may wait for the stuck exchange; we do not
		if ctx.Err() != nil {
			return nil, c.explain(ctx.Err())
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// Connected (or still dialing) but no answer: a listener
			// that is not Kafka, a TLS port spoken to in plaintext, or
			// packets dropped on the way.
			return nil, &problem{
				msg:  cannotReach(c.brokers, "no answer within "+pingTimeout.String()),
				hint: "is it a Kafka listener, and does it need --tls? (set --brokers or STROM_BROKERS)",
				err:  err,
			}
		}
		return nil, c.explain(err)
	}
	return cl, nil
}

// admin is client for the admin commands, with the kadm wrapper.
func (c *connFlags) admin(ctx context.Context) (*kadm.Client, func(), error) {
	cl, err := c.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(c.timeout / time.Millisecond))
	return adm, cl.Close, nil
}

// adminFor is what every admin command starts with: a context that Ctrl-C
// cancels and an admin client; done closes the client and releases the
// context.
func (c *connFlags) adminFor(cmd *cobra.Command) (context.Context, *kadm.Client, func(), error) {
	ctx, cancel := signalContext(cmd)
	adm, closeClient, err := c.admin(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, adm, func() { closeClient(); cancel() }, nil
}

// explain turns an error into one readable line, naming the brokers.
func (c *connFlags) explain(err error) error {
	return explain(err, c.with(errContext{}))
}

// with fills in what the connection flags know for explaining an error.
func (c *connFlags) with(ec errContext) errContext {
	ec.brokers, ec.sasl = c.brokers, c.saslMechanism != ""
	if f := c.fs.Lookup("brokers"); f == nil || !f.Changed || c.profileName == "" {
		return ec
	}
	// The profile set --brokers (resolve marks what it sets as changed);
	// unless the command line or -X did, which resolve leaves alone.
	if !c.brokersExplicit {
		ec.profile = c.profileName
	}
	return ec
}

func softwareVersion() string {
	v := version()
	// Kafka restricts the software version to [a-zA-Z0-9.-].
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, v)
}

// flagAliases maps the spellings of Kafka's own tools (and kcat's long
// names) to ours, so that a command line copied from a tutorial works.
var flagAliases = map[string]string{
	"bootstrap-server":      "brokers",
	"bootstrap-servers":     "brokers",
	"broker-list":           "brokers",
	"max-messages":          "count",
	"compression-codec":     "compression",
	"request-required-acks": "acks",
	"add-config":            "set",
	"delete-config":         "delete",
}

func normalizeFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if n, ok := flagAliases[name]; ok {
		return pflag.NormalizedName(n)
	}
	return pflag.NormalizedName(name)
}

// kafkaCommand finishes one of our top-level commands: Kafka's flag
// spellings, flag errors that name the command and the help to read, and
// a group command that refuses unknown subcommands instead of printing its
// help and exiting 0.
func kafkaCommand(cmd *cobra.Command) *cobra.Command {
	cmd.SetGlobalNormalizationFunc(normalizeFlag)
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.SetFlagErrorFunc(flagError)
		if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				if len(args) == 0 {
					return c.Help()
				}
				return &problem{
					msg:  fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath()),
					hint: fmt.Sprintf("see %q", c.CommandPath()+" --help"),
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd)
	return cmd
}
