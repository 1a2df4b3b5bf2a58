package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/raftnet"
	"github.com/stromhq/strom/internal/tlsconf"
)

// controllerSecurity is how a cluster node's raft transport (the metadata
// quorum and every replicated partition, on the CONTROLLER listener) is
// secured, from Kafka's settings for that listener:
//
//   - SSL: mutual TLS. The listener's keystore (listener.name.<controller
//     listener>.ssl.* overrides, else ssl.*) is presented both when
//     accepting and when dialling; its truststore verifies both sides. The
//     listener must have ssl.client.auth=required: a certificate is how a
//     peer is authenticated, so a CONTROLLER:SSL listener that would take
//     anyone's connection refuses to start instead.
//   - SASL_PLAINTEXT, SASL_SSL: the dialling node logs in with
//     sasl.mechanism.controller.protocol (PLAIN, SCRAM-SHA-256/512; Kafka's
//     default GSSAPI refuses the start), which the listener's
//     sasl.enabled.mechanisms must list, as the user of the listener's JAAS
//     login (listener.name.<listener>.<mechanism>.sasl.jaas.config, else
//     sasl.jaas.config). The accepting side checks PLAIN against that
//     listener's PLAIN JAAS login's user_<name>="<password>" entries (Kafka's
//     PlainLoginModule), SCRAM against the credentials in the metadata log
//     as this node applied them, or, while that holds none, the ones
//     `strom storage format --add-scram` put in this node's directory (the
//     quorum cannot give credentials before it forms: Kafka's bootstrap
//     problem, which its --add-scram solves the same way). SASL_SSL adds TLS
//     as for SSL, with ssl.client.auth as configured.
//   - PLAINTEXT: nothing, as before (anyone who reaches the port is a peer).
type controllerSecurity struct {
	listener  metadata.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config
	mechanism string // "" without SASL
	user      string
	password  string
	// enabled are the mechanisms accepted from diallers.
	enabled []string
	// plainUsers are the PLAIN JAAS login's user_ entries, derived.
	plainUsers auth.StaticCredentials
}

// newControllerSecurity checks the controller listener's settings; an
// error names the setting and stops the start.
func newControllerSecurity(bc *metadata.BrokerConfig, l metadata.Listener, log *slog.Logger) (*controllerSecurity, error) {
	cs := &controllerSecurity{listener: l}
	key := func(setting string) string {
		return "listener.name." + strings.ToLower(l.Name) + "." + setting + " (or " + setting + ")"
	}
	v := func(setting string) string { return bc.ListenerValue(l.Name, setting) }
	switch l.Protocol {
	case "PLAINTEXT":
		return cs, nil
	case "SSL", "SASL_SSL", "SASL_PLAINTEXT":
	default:
		return nil, fmt.Errorf("%w: listener.security.protocol.map gives the controller listener %s the protocol %s: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
			metadata.ErrInvalidConfig, l.Name, l.Protocol)
	}
	if l.TLS() {
		clientAuth := v("ssl.client.auth")
		if l.Protocol == "SSL" && clientAuth != "required" {
			return nil, fmt.Errorf("%w: the controller listener %s is SSL, so controllers authenticate each other by certificate: set %s=required (it is %q, which would let anyone who reaches the port take part in the metadata quorum)",
				metadata.ErrInvalidConfig, l.Name, key("ssl.client.auth"), clientAuth)
		}
		src, err := tlsconf.New(listenerTLS(bc, l.Name, log))
		if err != nil {
			return nil, fmt.Errorf("%w: controller listener %s: %v", metadata.ErrInvalidConfig, l.Name, err)
		}
		if src.Current().ClientCAs == nil {
			return nil, fmt.Errorf("%w: controller listener %s: the controllers check each other's certificates against a truststore: set %s",
				metadata.ErrInvalidConfig, l.Name, key("ssl.truststore.location"))
		}
		cs.serverTLS, cs.clientTLS = src.ServerConfig(), src.PeerClientConfig()
	}
	if !l.SASL() {
		return cs, nil
	}
	s := bc.Settings()
	mech := strings.ToUpper(s.SASLMechanismController)
	switch mech {
	case auth.PLAIN, auth.ScramSHA256, auth.ScramSHA512:
	default:
		return nil, fmt.Errorf("%w: the controller listener %s is %s and sasl.mechanism.controller.protocol=%s: Strom's controllers authenticate with PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (GSSAPI, Kafka's default, and OAUTHBEARER are not supported)",
			metadata.ErrInvalidConfig, l.Name, l.Protocol, s.SASLMechanismController)
	}
	for _, m := range bc.ListenerList(l.Name, "sasl.enabled.mechanisms") {
		if m == auth.PLAIN || m == auth.ScramSHA256 || m == auth.ScramSHA512 {
			cs.enabled = append(cs.enabled, m)
		}
	}
	if !slices.Contains(cs.enabled, mech) {
		return nil, fmt.Errorf("%w: sasl.mechanism.controller.protocol=%s is not among the controller listener %s's %s=%s",
			metadata.ErrInvalidConfig, mech, l.Name, key("sasl.enabled.mechanisms"), strings.Join(bc.ListenerList(l.Name, "sasl.enabled.mechanisms"), ","))
	}
	jaas, jkey := bc.ListenerJAAS(l.Name, mech)
	if jkey == "" {
		return nil, fmt.Errorf("%w: the controller listener %s is %s with %s but neither listener.name.%s.%s.sasl.jaas.config nor sasl.jaas.config gives this node's credentials",
			metadata.ErrInvalidConfig, l.Name, l.Protocol, mech, strings.ToLower(l.Name), strings.ToLower(mech))
	}
	login, err := auth.ParseJAAS(jaas)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", metadata.ErrInvalidConfig, jkey, err)
	}
	if cs.user, cs.password, err = login.Credentials(mech); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", metadata.ErrInvalidConfig, jkey, err)
	}
	cs.mechanism = mech
	if slices.Contains(cs.enabled, auth.PLAIN) {
		pj, pkey := bc.ListenerJAAS(l.Name, auth.PLAIN)
		var users []string
		if pkey != "" {
			pl, err := auth.ParseJAAS(pj)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", metadata.ErrInvalidConfig, pkey, err)
			}
			if users = pl.Users(); len(users) > 0 {
				if cs.plainUsers, err = auth.CredentialsFromJAAS(pl); err != nil {
					return nil, fmt.Errorf("%w: %s: %v", metadata.ErrInvalidConfig, pkey, err)
				}
			}
		}
		if len(users) == 0 {
			return nil, fmt.Errorf("%w: the controller listener %s enables PLAIN but listener.name.%s.plain.sasl.jaas.config (or sasl.jaas.config) lists no user_<name>=\"<password>\" entries: no controller could log in",
				metadata.ErrInvalidConfig, l.Name, strings.ToLower(l.Name))
		}
	}
	return cs, nil
}

// scramSource gives the accepting side's SCRAM credentials: the metadata
// log's as applied (live), else, while it holds none, the bootstrap ones.
type scramSource struct {
	live      func() *metadata.Security
	bootstrap *metadata.Security // nil without any
}

func (s scramSource) ScramCredential(user, mechanism string) (auth.ScramCredential, bool) {
	sec := s.live()
	if len(sec.ScramUsers()) == 0 && s.bootstrap != nil {
		sec = s.bootstrap
	}
	c, ok := sec.ScramCredential(user, mechanism)
	return auth.ScramCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}, ok
}

// transport fills the raft transport's security.
func (cs *controllerSecurity) transport(cfg *raftnet.Config, scram scramSource) {
	cfg.ServerTLS, cfg.ClientTLS = cs.serverTLS, cs.clientTLS
	if cs.mechanism == "" {
		return
	}
	mech, user, password := cs.mechanism, cs.user, cs.password
	cfg.SASL = &raftnet.SASL{
		Mechanism: mech,
		Client:    func() (raftnet.ClientExchange, error) { return auth.NewClientExchange(mech, user, password) },
		Server: func(m string) (raftnet.ServerExchange, error) {
			if !slices.Contains(cs.enabled, m) {
				return nil, fmt.Errorf("mechanism %s is not enabled on the controller listener", m)
			}
			var creds auth.Credentials = scram
			if m == auth.PLAIN {
				creds = cs.plainUsers
			}
			return auth.NewExchange(m, creds, nil)
		},
	}
}

// String describes the security for the log: never a password.
func (cs *controllerSecurity) String() string {
	s := fmt.Sprintf("listener %s (%s)", cs.listener.Name, cs.listener.Protocol)
	if cs.serverTLS != nil {
		s += " with TLS"
	}
	if cs.mechanism != "" {
		s += fmt.Sprintf(", %s as %s", cs.mechanism, cs.user)
	}
	return s
}
