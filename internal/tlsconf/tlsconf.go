// Package tlsconf builds the broker's TLS server configuration from Kafka's
// PEM settings (ssl.keystore.location, or ssl.keystore.certificate.chain
// and ssl.keystore.key inline; ssl.truststore.location or
// ssl.truststore.certificates; ssl.client.auth; ssl.enabled.protocols;
// ssl.key.password for an encrypted PKCS#8 key) and reloads the files when
// they change, without a restart.
//
// Reload: every handshake asks Source for its configuration
// (tls.Config.GetConfigForClient); at most once per CheckInterval the
// files are read again and, when their bytes differ, parsed into a new
// configuration that is swapped in atomically. A file that does not parse
// (a half-written renewal) keeps the previous configuration and is logged
// once per change; handshakes never wait for a lock held across I/O of
// another handshake longer than one read of the files. No goroutine.
//
// Only crypto/tls, crypto/x509 and github.com/youmark/pkcs8 (the
// decryption of encrypted PKCS#8 keys, which the standard library lacks):
// no hand-written cryptography.
package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/youmark/pkcs8"
)

// ErrConfig marks settings that cannot make a TLS configuration.
var ErrConfig = errors.New("tls config")

// DefaultCheckInterval is how often the files are compared with what was
// loaded.
const DefaultCheckInterval = time.Second

// Settings are the PEM settings under Kafka's names.
type Settings struct {
	KeystoreLocation string // PEM: private key and certificate chain
	CertificateChain string // inline PEM (with Key), instead of KeystoreLocation
	Key              string // inline PEM private key
	// KeyPassword (ssl.key.password) decrypts the private key, which must
	// then be an encrypted PKCS#8 block ("ENCRYPTED PRIVATE KEY", what
	// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes and Kafka's PEM
	// keystores read); empty: the key must not be encrypted.
	KeyPassword        string
	TruststoreLocation string // PEM CA certificates for client certificates
	TruststorePEM      string // inline CA certificates
	ClientAuth         string // required, requested or none ("" = none)
	EnabledProtocols   []string
	// CheckInterval: zero means DefaultCheckInterval; negative checks at
	// every handshake (tests).
	CheckInterval time.Duration
	Logger        *slog.Logger
}

// Source hands out the current server configuration.
type Source struct {
	s   Settings
	cur atomic.Pointer[loaded]

	mu        sync.Mutex // serialises reloads
	lastCheck atomic.Int64
	badLogged []byte // the file bytes last refused, so a bad file logs once
}

type loaded struct {
	cfg   *tls.Config
	files []byte // the bytes of every file read, concatenated, for comparison
}

// New loads the settings once; an error names what is wrong.
func New(s Settings) (*Source, error) {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.CheckInterval == 0 {
		s.CheckInterval = DefaultCheckInterval
	}
	src := &Source{s: s}
	files, err := src.readFiles()
	if err != nil {
		return nil, err
	}
	l, err := src.build(files)
	if err != nil {
		return nil, err
	}
	src.cur.Store(l)
	src.lastCheck.Store(time.Now().UnixNano())
	return src, nil
}

// ServerConfig is the configuration to give tls.Server: it asks the Source
// for the current one at every handshake.
func (src *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			src.maybeReload()
			return src.cur.Load().cfg, nil
		},
	}
}

// SelfClientConfig is a client configuration for dialing this Source's
// own listener (the broker's console logging users in through it): it
// trusts exactly the certificate the Source serves at the handshake,
// whatever names it carries, since the dial is to a loopback address the
// certificate need not name. Chain and host name checks are replaced by
// that pin (VerifyConnection), not dropped.
func (src *Source) SelfClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrNotSelf
			}
			src.maybeReload()
			for _, c := range src.Current().Certificates {
				if len(c.Certificate) > 0 && bytes.Equal(c.Certificate[0], cs.PeerCertificates[0].Raw) {
					return nil
				}
			}
			return ErrNotSelf
		},
	}
}

// PeerClientConfig is a client configuration for dialing another
// broker's listener configured like this one (the inter-broker client):
// the server's chain is checked against this Source's truststore (the
// system's CAs without one) and its name against the address dialed; the
// keystore's certificate is presented when the peer asks for one (mTLS),
// the current one at each handshake, so renewals apply. The truststore is
// the one loaded when this is called.
func (src *Source) PeerClientConfig() *tls.Config {
	cur := src.Current()
	return &tls.Config{
		MinVersion: cur.MinVersion,
		MaxVersion: cur.MaxVersion,
		RootCAs:    cur.ClientCAs,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			src.maybeReload()
			if c := src.Current().Certificates; len(c) > 0 {
				return &c[0], nil
			}
			return &tls.Certificate{}, nil
		},
	}
}

// ErrNotSelf: the peer's certificate is not the one this Source serves.
var ErrNotSelf = errors.New("tls: the peer's certificate is not this listener's own")

// Current is the configuration in force now (tests, and the certificate's
// expiry for logs).
func (src *Source) Current() *tls.Config { return src.cur.Load().cfg }

func (src *Source) maybeReload() {
	now := time.Now().UnixNano()
	if last := src.lastCheck.Load(); src.s.CheckInterval > 0 && now-last < int64(src.s.CheckInterval) {
		return
	}
	if !src.mu.TryLock() {
		return // another handshake is checking; use what is loaded
	}
	defer src.mu.Unlock()
	src.lastCheck.Store(now)
	files, err := src.readFiles()
	if err != nil {
		src.logBad(nil, err)
		return
	}
	if bytes.Equal(files, src.cur.Load().files) {
		return
	}
	l, err := src.build(files)
	if err != nil {
		src.logBad(files, err)
		return
	}
	src.cur.Store(l)
	src.badLogged = nil
	src.s.Logger.Info("tls: certificates reloaded", "keystore", src.s.KeystoreLocation, "truststore", src.s.TruststoreLocation)
}

func (src *Source) logBad(files []byte, err error) {
	if files != nil && bytes.Equal(files, src.badLogged) {
		return
	}
	src.badLogged = files
	src.s.Logger.Warn("tls: certificate files changed but do not load; keeping the previous ones", "err", err)
}

// readFiles reads the files named by the settings, in a fixed order.
func (src *Source) readFiles() ([]byte, error) {
	var all []byte
	for _, p := range []string{src.s.KeystoreLocation, src.s.TruststoreLocation} {
		if p == "" {
			all = append(all, 0)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		all = append(all, b...)
		all = append(all, 0)
	}
	return all, nil
}

// build parses the key pair and CAs into a configuration.
func (src *Source) build(files []byte) (*loaded, error) {
	s := src.s
	var certPEM, keyPEM []byte
	switch {
	case s.KeystoreLocation != "" && (s.CertificateChain != "" || s.Key != ""):
		return nil, fmt.Errorf("%w: ssl.keystore.location and ssl.keystore.certificate.chain/ssl.keystore.key are exclusive", ErrConfig)
	case s.KeystoreLocation != "":
		b, err := os.ReadFile(s.KeystoreLocation)
		if err != nil {
			return nil, fmt.Errorf("%w: ssl.keystore.location: %v", ErrConfig, err)
		}
		certPEM, keyPEM = b, b // tls.X509KeyPair picks the blocks it needs
	case s.CertificateChain != "" && s.Key != "":
		certPEM, keyPEM = []byte(s.CertificateChain), []byte(s.Key)
	default:
		return nil, fmt.Errorf("%w: a TLS listener needs ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key (PEM)", ErrConfig)
	}
	keyPEM, err := decryptKey(keyPEM, s.KeyPassword)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: keystore: %v", ErrConfig, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if err := setVersions(cfg, s.EnabledProtocols); err != nil {
		return nil, err
	}
	var caPEM []byte
	switch {
	case s.TruststoreLocation != "" && s.TruststorePEM != "":
		return nil, fmt.Errorf("%w: ssl.truststore.location and ssl.truststore.certificates are exclusive", ErrConfig)
	case s.TruststoreLocation != "":
		if caPEM, err = os.ReadFile(s.TruststoreLocation); err != nil {
			return nil, fmt.Errorf("%w: ssl.truststore.location: %v", ErrConfig, err)
		}
	case s.TruststorePEM != "":
		caPEM = []byte(s.TruststorePEM)
	}
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%w: truststore holds no PEM certificate", ErrConfig)
		}
		cfg.ClientCAs = pool
	}
	switch s.ClientAuth {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("%w: ssl.client.auth=%q: want required, requested or none", ErrConfig, s.ClientAuth)
	}
	if cfg.ClientAuth != tls.NoClientCert && cfg.ClientCAs == nil {
		return nil, fmt.Errorf("%w: ssl.client.auth=%s needs ssl.truststore.location (the CAs client certificates are checked against)", ErrConfig, s.ClientAuth)
	}
	return &loaded{cfg: cfg, files: files}, nil
}

func setVersions(cfg *tls.Config, protocols []string) error {
	if len(protocols) == 0 {
		return nil
	}
	var lo, hi uint16
	for _, p := range protocols {
		var v uint16
		switch p {
		case "TLSv1.2":
			v = tls.VersionTLS12
		case "TLSv1.3":
			v = tls.VersionTLS13
		default:
			return fmt.Errorf("%w: ssl.enabled.protocols: %q: want TLSv1.2 or TLSv1.3", ErrConfig, p)
		}
		if lo == 0 || v < lo {
			lo = v
		}
		hi = max(hi, v)
	}
	cfg.MinVersion, cfg.MaxVersion = lo, hi
	return nil
}

// decryptKey returns keyPEM with its encrypted PKCS#8 private key (the
// "ENCRYPTED PRIVATE KEY" block, RFC 5958) decrypted with password and
// written back as a plain PKCS#8 block, for tls.X509KeyPair; the other
// blocks (a keystore file's certificates) are kept. Without a password
// keyPEM is returned as it is, unless it holds an encrypted key, which is
// an error that names the setting to give. The decryption (PBES2 with
// PBKDF2 or scrypt, AES or 3DES) is github.com/youmark/pkcs8's.
func decryptKey(keyPEM []byte, password string) ([]byte, error) {
	var out []byte
	found := false
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "ENCRYPTED PRIVATE KEY" {
			out = append(out, pem.EncodeToMemory(b)...)
			continue
		}
		if password == "" {
			return nil, fmt.Errorf("%w: the private key is encrypted: set ssl.key.password", ErrConfig)
		}
		if found {
			return nil, fmt.Errorf("%w: keystore: two encrypted private keys", ErrConfig)
		}
		found = true
		key, err := pkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(password))
		if err != nil {
			// A wrong password mostly shows as bad padding or a bad
			// structure after decryption; say the likely cause.
			return nil, fmt.Errorf("%w: keystore: the encrypted private key does not decrypt with ssl.key.password (wrong password?): %v", ErrConfig, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("%w: keystore: %v", ErrConfig, err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	if password == "" {
		return keyPEM, nil
	}
	if !found {
		return nil, fmt.Errorf("%w: ssl.key.password is set but the keystore's private key is not an encrypted PKCS#8 block (ENCRYPTED PRIVATE KEY)", ErrConfig)
	}
	return out, nil
}
