package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/tlsconf"
)

// errNoInterBroker: this broker's settings cannot make an inter-broker
// client (transactions in a cluster are then refused, with this reason).
var errNoInterBroker = errors.New("no inter-broker client")

// interBroker is how this broker's inter-broker client (txnPeer) reaches
// the other brokers, from Kafka's settings: inter.broker.listener.name
// picks the listener (its security protocol from
// listener.security.protocol.map), sasl.mechanism.inter.broker.protocol
// the SASL mechanism, and listener.name.<listener>.<mechanism>.sasl.jaas.config
// (else sasl.jaas.config) the broker's own user and password. TLS trusts
// that listener's truststore and presents its keystore's certificate when
// asked (mTLS).
//
// The brokers of a cluster register every listener's advertised address
// (metadata.BrokerInfo.Endpoints): peers are dialed at their endpoint of
// this listener, and the Metadata they answer on it names the others'
// endpoints of it too. Peers are assumed configured alike (the same
// listener name, protocol and mechanisms).
type interBroker struct {
	listener  metadata.Listener
	mechanism string // "" without SASL
	user      string
	password  string
	tls       *tls.Config // nil without TLS
}

// newInterBroker builds the inter-broker client's settings; the error,
// wrapping errNoInterBroker, names the setting that prevents it.
func newInterBroker(bc *metadata.BrokerConfig, listeners []metadata.Listener) (*interBroker, error) {
	s := bc.Settings()
	name := strings.ToUpper(s.InterBrokerListenerName)
	i := slices.IndexFunc(listeners, func(l metadata.Listener) bool { return l.Name == name })
	var names []string
	for _, l := range listeners {
		names = append(names, l.Name)
	}
	if i < 0 {
		return nil, fmt.Errorf("%w: inter.broker.listener.name=%s names none of the listeners (%s)", errNoInterBroker, s.InterBrokerListenerName, strings.Join(names, ", "))
	}
	ib := &interBroker{listener: listeners[i]}
	l := ib.listener
	if l.TLS() {
		ts := listenerTLS(bc, l.Name, nil)
		ts.ClientAuth = "" // a client's configuration: the listener's demand is not ours
		src, err := tlsconf.New(ts)
		if err != nil {
			return nil, fmt.Errorf("%w: listener %s: TLS: %v", errNoInterBroker, l.Name, err)
		}
		ib.tls = src.PeerClientConfig()
	}
	if !l.SASL() {
		return ib, nil
	}
	mech := strings.ToUpper(s.SASLMechanismInterBroker)
	switch mech {
	case auth.PLAIN, auth.ScramSHA256, auth.ScramSHA512:
	default:
		return nil, fmt.Errorf("%w: sasl.mechanism.inter.broker.protocol=%s: the inter-broker client speaks PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (GSSAPI, Kafka's default, and OAUTHBEARER are not supported)",
			errNoInterBroker, s.SASLMechanismInterBroker)
	}
	if enabled := bc.ListenerList(l.Name, "sasl.enabled.mechanisms"); !slices.Contains(enabled, mech) {
		return nil, fmt.Errorf("%w: sasl.mechanism.inter.broker.protocol=%s is not among listener %s's sasl.enabled.mechanisms (%s)",
			errNoInterBroker, mech, l.Name, strings.Join(enabled, ","))
	}
	jaas, key := bc.ListenerJAAS(l.Name, mech)
	if key == "" {
		return nil, fmt.Errorf("%w: listener %s is %s with %s but neither listener.name.%s.%s.sasl.jaas.config nor sasl.jaas.config gives the broker's credentials",
			errNoInterBroker, l.Name, l.Protocol, mech, strings.ToLower(l.Name), strings.ToLower(mech))
	}
	login, err := auth.ParseJAAS(jaas)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errNoInterBroker, key, err)
	}
	if ib.user, ib.password, err = login.Credentials(mech); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errNoInterBroker, key, err)
	}
	ib.mechanism = mech
	return ib, nil
}

// opts are the franz-go options for the listener's security.
func (ib *interBroker) opts() []kgo.Opt {
	var opts []kgo.Opt
	if ib.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(ib.tls.Clone()))
	}
	var m sasl.Mechanism
	switch ib.mechanism {
	case auth.PLAIN:
		m = plain.Auth{User: ib.user, Pass: ib.password}.AsMechanism()
	case auth.ScramSHA256:
		m = scram.Auth{User: ib.user, Pass: ib.password}.AsSha256Mechanism()
	case auth.ScramSHA512:
		m = scram.Auth{User: ib.user, Pass: ib.password}.AsSha512Mechanism()
	}
	if m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

// principal is who the peers see: the SASL user, else ANONYMOUS (a
// certificate's subject on an mTLS listener is mapped by the peer's rules,
// which this broker does not apply to itself).
func (ib *interBroker) principal() string {
	switch {
	case ib.mechanism != "":
		return "User:" + ib.user
	case ib.tls != nil:
		return "the principal of this broker's certificate"
	}
	return server.Anonymous
}

// String describes the client for the log: never the password.
func (ib *interBroker) String() string {
	s := fmt.Sprintf("listener %s (%s)", ib.listener.Name, ib.listener.Protocol)
	if ib.mechanism != "" {
		s += fmt.Sprintf(" %s as %s", ib.mechanism, ib.user)
	}
	return s
}
