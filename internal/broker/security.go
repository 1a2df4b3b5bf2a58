package broker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/handler"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/tlsconf"
)

// security is what the listeners need to secure connections, built once at
// start from the ssl.*, sasl.* and authorizer settings. Each listener may
// override the ssl.* settings and sasl.enabled.mechanisms with Kafka's
// listener.name.<listener>.<setting>.
type security struct {
	listeners  map[string]listenerSecurity
	mechanisms map[string][]string // by listener: SASL mechanisms Strom serves
	acls       handler.ACLConfig
	oauth      *auth.OAuthValidator // nil without sasl.oauthbearer.jwks.endpoint.url
	// plainUsers are, by listener, the user_<name>="<password>" entries
	// of its PLAIN JAAS login (Kafka's PlainLoginModule users), derived.
	plainUsers map[string]auth.Credentials
}

type listenerSecurity struct {
	tls    *tlsconf.Source       // nil without TLS
	mapper *auth.PrincipalMapper // ssl.principal.mapping.rules
}

// newSecurity checks the security settings against the listeners: a TLS
// listener needs a keystore, a SASL listener a mechanism Strom serves.
func newSecurity(bc *metadata.BrokerConfig, listeners []metadata.Listener, log *slog.Logger) (*security, error) {
	s := bc.Settings()
	sec := &security{listeners: map[string]listenerSecurity{}, mechanisms: map[string][]string{}}
	if s.SSLKeystoreType != "PEM" || s.SSLTruststoreType != "PEM" {
		return nil, fmt.Errorf("%w: ssl.keystore.type=%s ssl.truststore.type=%s: Strom reads PEM only", metadata.ErrInvalidConfig, s.SSLKeystoreType, s.SSLTruststoreType)
	}
	switch {
	case slices.Contains(handler.StandardAuthorizerNames, s.AuthorizerClassName):
		sec.acls = handler.ACLConfig{Enabled: true, SuperUsers: acl.ParseSuperUsers(s.SuperUsers), AllowEveryoneIfNoACL: s.AllowEveryoneIfNoACLFound}
	case s.AuthorizerClassName != "":
		return nil, fmt.Errorf("%w: authorizer.class.name=%s: Strom's authorizer is Kafka's StandardAuthorizer (%s)",
			metadata.ErrInvalidConfig, s.AuthorizerClassName, handler.StandardAuthorizerNames[0])
	}
	if u := s.OAuthJWKSURL; u != "" {
		var v *auth.OAuthValidator
		var err error
		path, isFile := strings.CutPrefix(u, "file://")
		switch {
		case isFile || !strings.Contains(u, "://"):
			v, err = auth.LoadJWKS(path)
		case strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://"):
			// Fetched once now; the broker runs v.Run for the
			// refreshes (Broker.Start, oauthLoop).
			var fetch func(context.Context) ([]byte, error)
			if fetch, err = jwksFetcher(u, nil); err == nil {
				v, err = auth.FetchJWKS(context.Background(), auth.JWKSOptions{Source: u, Fetch: fetch, Refresh: s.OAuthJWKSRefresh,
					RetryBackoff: s.OAuthJWKSRetryBackoff, RetryBackoffMax: s.OAuthJWKSRetryBackoffMax, Logger: log})
			}
		default:
			err = fmt.Errorf("want a file (a path or file:// URL) or an http(s) URL")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: sasl.oauthbearer.jwks.endpoint.url=%s: %v", metadata.ErrInvalidConfig, u, err)
		}
		v.Issuer, v.Audience, v.SubClaim = s.OAuthExpectedIssuer, s.OAuthExpectedAudience, s.OAuthSubClaim
		v.ClockSkew = time.Duration(s.OAuthClockSkewSeconds) * time.Second
		sec.oauth = v
	}
	for _, l := range listeners {
		v := func(setting string) string { return bc.ListenerValue(l.Name, setting) }
		var ls listenerSecurity
		var err error
		if ls.mapper, err = auth.ParseMappingRules(v("ssl.principal.mapping.rules")); err != nil {
			return nil, fmt.Errorf("%w: listener %s: %v", metadata.ErrInvalidConfig, l.Name, err)
		}
		if l.TLS() {
			ls.tls, err = tlsconf.New(listenerTLS(bc, l.Name, log))
			if err != nil {
				return nil, fmt.Errorf("%w: listener %s: %v", metadata.ErrInvalidConfig, l.Name, err)
			}
		}
		sec.listeners[l.Name] = ls
		if !l.SASL() {
			continue
		}
		enabled := bc.ListenerList(l.Name, "sasl.enabled.mechanisms")
		if slices.Contains(enabled, auth.PLAIN) {
			if jaas, key := bc.ListenerJAAS(l.Name, auth.PLAIN); key != "" {
				login, err := auth.ParseJAAS(jaas)
				if err != nil {
					return nil, fmt.Errorf("%w: %s: %v", metadata.ErrInvalidConfig, key, err)
				}
				if len(login.Users()) > 0 {
					users, err := auth.CredentialsFromJAAS(login)
					if err != nil {
						return nil, fmt.Errorf("%w: %s: %v", metadata.ErrInvalidConfig, key, err)
					}
					if sec.plainUsers == nil {
						sec.plainUsers = map[string]auth.Credentials{}
					}
					sec.plainUsers[l.Name] = users
				}
			}
		}
		for _, m := range enabled {
			if m == auth.OAUTHBEARER && sec.oauth == nil {
				return nil, fmt.Errorf("%w: listener %s enables OAUTHBEARER without sasl.oauthbearer.jwks.endpoint.url", metadata.ErrInvalidConfig, l.Name)
			}
			if slices.Contains(auth.Mechanisms, m) {
				sec.mechanisms[l.Name] = append(sec.mechanisms[l.Name], m)
			}
		}
		if len(sec.mechanisms[l.Name]) == 0 {
			return nil, fmt.Errorf("%w: listener %s is %s but sasl.enabled.mechanisms=%v names none Strom serves (%v)",
				metadata.ErrInvalidConfig, l.Name, l.Protocol, enabled, auth.Mechanisms)
		}
	}
	return sec, nil
}

// listener is the server's view of one listener.
func (sec *security) listener(l metadata.Listener) server.Listener {
	out := server.Listener{Name: l.Name, SASL: l.SASL()}
	if ls := sec.listeners[l.Name]; ls.tls != nil {
		out.TLS = ls.tls.ServerConfig()
		out.CertPrincipal = ls.mapper.CertPrincipal
	}
	return out
}

// listenerTLS is the TLS settings of listener name, each one Kafka's
// listener.name.<name>.ssl.* if set, else ssl.*: the Kafka listeners', the
// controller listener's and the inter-broker client's (which clears
// ClientAuth, a server's demand).
func listenerTLS(bc *metadata.BrokerConfig, name string, log *slog.Logger) tlsconf.Settings {
	v := func(setting string) string { return bc.ListenerValue(name, setting) }
	return tlsconf.Settings{
		KeystoreLocation:   v("ssl.keystore.location"),
		CertificateChain:   v("ssl.keystore.certificate.chain"),
		Key:                v("ssl.keystore.key"),
		KeyPassword:        v("ssl.key.password"),
		TruststoreLocation: v("ssl.truststore.location"),
		TruststorePEM:      v("ssl.truststore.certificates"),
		ClientAuth:         v("ssl.client.auth"),
		EnabledProtocols:   bc.ListenerList(name, "ssl.enabled.protocols"),
		Logger:             log,
	}
}
