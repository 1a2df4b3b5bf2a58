package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/testutil"
	"github.com/youmark/pkcs8"
)

// TestSettingsRefused: settings that cannot make a server configuration are
// refused at start with ErrConfig, naming the setting.
func TestSettingsRefused(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "ca")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	ks := testutil.WriteFile(t, dir, "server.pem", leaf.CertPEM, leaf.KeyPEM)
	ts := testutil.WriteFile(t, dir, "ca.pem", ca.PEM)
	for name, s := range map[string]Settings{
		"no keystore":          {},
		"both keystores":       {KeystoreLocation: ks, CertificateChain: string(leaf.CertPEM), Key: string(leaf.KeyPEM)},
		"missing file":         {KeystoreLocation: dir + "/nope.pem"},
		"key only":             {KeystoreLocation: testutil.WriteFile(t, dir, "key.pem", leaf.KeyPEM)},
		"required without CAs": {KeystoreLocation: ks, ClientAuth: "required"},
		"bad client auth":      {KeystoreLocation: ks, TruststoreLocation: ts, ClientAuth: "sometimes"},
		"bad protocol":         {KeystoreLocation: ks, EnabledProtocols: []string{"TLSv1.0"}},
		"empty truststore":     {KeystoreLocation: ks, TruststoreLocation: testutil.WriteFile(t, dir, "empty.pem", []byte("x"))},
	} {
		if _, err := New(s); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	src, err := New(Settings{CertificateChain: string(leaf.CertPEM), Key: string(leaf.KeyPEM), TruststorePEM: string(ca.PEM),
		ClientAuth: "requested", EnabledProtocols: []string{"TLSv1.3"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := src.Current(); c.ClientAuth != tls.VerifyClientCertIfGiven || c.MinVersion != tls.VersionTLS13 || c.ClientCAs == nil {
		t.Fatalf("config %+v", c)
	}
}

// TestReloadKeepsOldOnBadFile: a keystore rewritten with garbage keeps the
// loaded certificate; a good rewrite replaces it.
func TestReloadKeepsOldOnBadFile(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "ca")
	a := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "a"}, Server: true})
	b := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "b"}, Server: true})
	ks := testutil.WriteFile(t, dir, "server.pem", a.CertPEM, a.KeyPEM)
	src, err := New(Settings{KeystoreLocation: ks, CheckInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		cfg, err := src.ServerConfig().GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return string(cfg.Certificates[0].Leaf.Subject.CommonName)
	}
	if got := cn(); got != "a" {
		t.Fatalf("serving %q", got)
	}
	testutil.WriteFile(t, dir, "server.pem", []byte("-----BEGIN garbage"))
	if got := cn(); got != "a" {
		t.Fatalf("after a bad rewrite serving %q, want a", got)
	}
	testutil.WriteFile(t, dir, "server.pem", b.CertPEM, b.KeyPEM)
	if got := cn(); got != "b" {
		t.Fatalf("after a good rewrite serving %q, want b", got)
	}
}

// TestSelfClientConfig: the pinned client configuration completes a
// handshake with its own Source's server over an address the certificate
// does not name, and refuses a server with another certificate, even one
// of the same CA for the same name.
func TestSelfClientConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "ca")
	mine := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "kafka.example.com"}, Server: true})
	other := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "kafka.example.com"}, Server: true})
	src, err := New(Settings{KeystoreLocation: testutil.WriteFile(t, dir, "mine.pem", mine.CertPEM, mine.KeyPEM), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	imposter, err := New(Settings{KeystoreLocation: testutil.WriteFile(t, dir, "other.pem", other.CertPEM, other.KeyPEM), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(server *Source) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			tls.Server(c, server.ServerConfig()).Handshake()
		}()
		defer func() { <-done }()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return tls.Client(c, src.SelfClientConfig()).Handshake()
	}
	if err := handshake(src); err != nil {
		t.Errorf("own certificate: %v", err)
	}
	if err := handshake(imposter); !errors.Is(err, ErrNotSelf) {
		t.Errorf("another certificate: %v, want ErrNotSelf", err)
	}
}

// TestEncryptedKey: ssl.key.password decrypts an encrypted PKCS#8 key, one
// made by OpenSSL (testdata) and one by the library with scrypt, inline or
// in a keystore file with its certificate; a wrong or missing password,
// and a password for a key that is not encrypted, are refused with
// ErrConfig naming ssl.key.password.
func TestEncryptedKey(t *testing.T) {
	certPEM, err := os.ReadFile("testdata/encrypted-key-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile("testdata/encrypted-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(Settings{CertificateChain: string(certPEM), Key: string(keyPEM), KeyPassword: "strom-test"})
	if err != nil {
		t.Fatalf("OpenSSL's encrypted key with its password: %v", err)
	}
	if cn := src.Current().Certificates[0].Leaf.Subject.CommonName; cn != "localhost" {
		t.Fatalf("serving %q", cn)
	}

	dir := t.TempDir()
	ca := testutil.NewCA(t, "ca")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "scrypt"}, Server: true})
	block, _ := pem.Decode(leaf.KeyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pkcs8.MarshalPrivateKey(key, []byte("s3cret"), &pkcs8.Opts{Cipher: pkcs8.AES128CBC,
		KDFOpts: pkcs8.ScryptOpts{CostParameter: 1 << 10, BlockSize: 8, ParallelizationParameter: 1, SaltSize: 16}})
	if err != nil {
		t.Fatal(err)
	}
	encPEM := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
	ks := testutil.WriteFile(t, dir, "server.pem", leaf.CertPEM, encPEM)
	src, err = New(Settings{KeystoreLocation: ks, KeyPassword: "s3cret"})
	if err != nil {
		t.Fatalf("a keystore file with a scrypt-encrypted key: %v", err)
	}
	if cn := src.Current().Certificates[0].Leaf.Subject.CommonName; cn != "scrypt" {
		t.Fatalf("serving %q", cn)
	}

	for name, s := range map[string]Settings{
		"wrong password":    {CertificateChain: string(certPEM), Key: string(keyPEM), KeyPassword: "nope"},
		"no password":       {CertificateChain: string(certPEM), Key: string(keyPEM)},
		"wrong on the file": {KeystoreLocation: ks, KeyPassword: "strom-test"},
		"not encrypted":     {CertificateChain: string(leaf.CertPEM), Key: string(leaf.KeyPEM), KeyPassword: "s3cret"},
	} {
		_, err := New(s)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "ssl.key.password") {
			t.Errorf("%s: %v, want ErrConfig naming ssl.key.password", name, err)
		}
	}
}
