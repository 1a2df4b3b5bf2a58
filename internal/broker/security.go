package broker

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/handler"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/tlsconf"
)

// security is what the listeners need to secure connections, built once at
// start from the ssl.* and sasl.* settings.
type security struct {
	tls        *tlsconf.Source       // nil without a TLS listener
	mapper     *auth.PrincipalMapper // ssl.principal.mapping.rules
	mechanisms []string              // SASL mechanisms Strom serves, of sasl.enabled.mechanisms
	acls       handler.ACLConfig     // authorizer.class.name, super.users, ...
}

// newSecurity checks the security settings against the listeners: a TLS
// listener needs a keystore, a SASL listener a mechanism Strom serves.
func newSecurity(bc *metadata.BrokerConfig, listeners []metadata.Listener, log *slog.Logger) (*security, error) {
	s := bc.Settings()
	sec := &security{}
	var err error
	if sec.mapper, err = auth.ParseMappingRules(s.SSLPrincipalMappingRules); err != nil {
		return nil, fmt.Errorf("%w: %v", metadata.ErrInvalidConfig, err)
	}
	if s.SSLKeystoreType != "PEM" || s.SSLTruststoreType != "PEM" {
		return nil, fmt.Errorf("%w: ssl.keystore.type=%s ssl.truststore.type=%s: Strom reads PEM only", metadata.ErrInvalidConfig, s.SSLKeystoreType, s.SSLTruststoreType)
	}
	if s.SSLKeyPassword != "" {
		return nil, fmt.Errorf("%w: ssl.key.password: encrypted PEM keys are not supported; give the key unencrypted (file mode 0600)", metadata.ErrInvalidConfig)
	}
	switch {
	case slices.Contains(handler.StandardAuthorizerNames, s.AuthorizerClassName):
		sec.acls = handler.ACLConfig{Enabled: true, SuperUsers: acl.ParseSuperUsers(s.SuperUsers), AllowEveryoneIfNoACL: s.AllowEveryoneIfNoACLFound}
	case s.AuthorizerClassName != "":
		return nil, fmt.Errorf("%w: authorizer.class.name=%s: Strom's authorizer is Kafka's StandardAuthorizer (%s)",
			metadata.ErrInvalidConfig, s.AuthorizerClassName, handler.StandardAuthorizerNames[0])
	}
	for _, m := range s.SASLEnabledMechanisms {
		if slices.Contains(auth.Mechanisms, m) {
			sec.mechanisms = append(sec.mechanisms, m)
		}
	}
	for _, l := range listeners {
		if l.TLS() && sec.tls == nil {
			sec.tls, err = tlsconf.New(tlsconf.Settings{
				KeystoreLocation:   s.SSLKeystoreLocation,
				CertificateChain:   s.SSLKeystoreCertificateChain,
				Key:                s.SSLKeystoreKey,
				TruststoreLocation: s.SSLTruststoreLocation,
				TruststorePEM:      s.SSLTruststoreCertificates,
				ClientAuth:         s.SSLClientAuth,
				EnabledProtocols:   s.SSLEnabledProtocols,
				Logger:             log,
			})
			if err != nil {
				return nil, fmt.Errorf("%w: listener %s: %v", metadata.ErrInvalidConfig, l.Name, err)
			}
		}
		if l.SASL() && len(sec.mechanisms) == 0 {
			return nil, fmt.Errorf("%w: listener %s is %s but sasl.enabled.mechanisms=%v names none Strom serves (%v)",
				metadata.ErrInvalidConfig, l.Name, l.Protocol, s.SASLEnabledMechanisms, auth.Mechanisms)
		}
	}
	return sec, nil
}

// listener is the server's view of one listener.
func (sec *security) listener(l metadata.Listener) server.Listener {
	out := server.Listener{Name: l.Name, SASL: l.SASL()}
	if l.TLS() {
		out.TLS = sec.tls.ServerConfig()
		out.CertPrincipal = sec.mapper.CertPrincipal
	}
	return out
}
