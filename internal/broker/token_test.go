package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/acl"
)

// tokenAuth is franz-go's SCRAM-SHA-512 login with a delegation token
// (tokenauth=true: IsToken).
func tokenAuth(tok kadm.DelegationToken) kgo.Opt {
	return kgo.SASL(scram.Auth{User: tok.TokenID, Pass: base64.StdEncoding.EncodeToString(tok.HMAC), IsToken: true}.AsSha512Mechanism())
}

// tokenClient logs in with a delegation token on s's SASL listener.
func tokenClient(t *testing.T, s *secured, tok kadm.DelegationToken) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.addr("SASL_PLAINTEXT")), kgo.RequestRetries(0), tokenAuth(tok))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestDelegationTokens (KIP-48): alice creates a token with bob as a
// renewer; a client logged in with it acts as alice (her ACLs let it
// produce to her topic, and not to bob's), may not create or renew tokens
// itself, and keeps working after the broker restarts (the token is in
// the metadata). Bob renews it; admin, neither owner nor renewer, cannot
// expire it; alice's expiry revokes it, and a new login with it fails.
// Creating one for another owner needs CREATE_TOKENS on that user.
func TestDelegationTokens(t *testing.T) {
	s, client := aclBroker(t, map[string]string{"delegation.token.secret.key": "a-shared-secret",
		"delegation.token.expiry.time.ms": "3600000"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, alice, bob := kadm.NewClient(client("admin")), kadm.NewClient(client("alice")), kadm.NewClient(client("bob"))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "alice-t"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "bob-t"); err != nil {
		t.Fatal(err)
	}
	allow := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("alice-t").Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := admin.CreateACLs(ctx, allow); err != nil {
		t.Fatal(err)
	}

	tok, err := alice.CreateDelegationToken(ctx, kadm.CreateDelegationToken{Renewers: []kadm.Principal{{Name: "bob"}}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Owner.Name != "alice" || tok.TokenID == "" || len(tok.HMAC) != 64 || !tok.ExpiryTimestamp.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("token %+v", tok)
	}
	produce := func(cl *kgo.Client, topic string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("by token")}).FirstErr()
	}
	tc := tokenClient(t, s, tok)
	if err := produce(tc, "alice-t"); err != nil {
		t.Fatalf("produce as alice's token: %v", err)
	}
	if err := produce(tc, "bob-t"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to bob's topic with alice's token: %v", err)
	}
	if _, err := kadm.NewClient(tc).CreateDelegationToken(ctx, kadm.CreateDelegationToken{}); !errors.Is(err, kerr.DelegationTokenRequestNotAllowed) {
		t.Fatalf("a token creating a token: %v", err)
	}
	if _, err := bob.CreateDelegationToken(ctx, kadm.CreateDelegationToken{Owner: &kadm.Principal{Name: "alice"}}); !errors.Is(err, kerr.DelegationTokenAuthorizationFailed) {
		t.Fatalf("bob creating one for alice: %v", err)
	}
	// kadm has no builder for User resources (KIP-373): the CreateAcls
	// request is built by hand.
	if err := createUserACL(ctx, client("admin"), "User:bob", "User:alice", acl.OpCreateTokens); err != nil {
		t.Fatal(err)
	}
	other, err := bob.CreateDelegationToken(ctx, kadm.CreateDelegationToken{Owner: &kadm.Principal{Name: "alice"}})
	if err != nil || other.Owner.Name != "alice" || other.TokenRequesterPrincipal.Name != "bob" {
		t.Fatalf("bob creating one for alice with CREATE_TOKENS: %+v %v", other, err)
	}

	// The token is metadata: it survives a restart.
	s.restart(t)
	tc = tokenClient(t, s, tok)
	if err := produce(tc, "alice-t"); err != nil {
		t.Fatalf("produce with the token after a restart: %v", err)
	}
	alice, bob = kadm.NewClient(client("alice")), kadm.NewClient(client("bob"))
	if _, err := kadm.NewClient(tc).RenewDelegationToken(ctx, tok.HMAC, time.Hour); !errors.Is(err, kerr.DelegationTokenRequestNotAllowed) {
		t.Fatalf("renew over a token session: %v", err)
	}
	exp, err := bob.RenewDelegationToken(ctx, tok.HMAC, 2*time.Hour)
	if err != nil || exp.Before(time.Now().Add(110*time.Minute)) {
		t.Fatalf("bob renewing: %v %v", exp, err)
	}
	if _, err := kadm.NewClient(client("admin")).ExpireDelegationToken(ctx, tok.HMAC, -1); !errors.Is(err, kerr.DelegationTokenOwnerMismatch) {
		t.Fatalf("admin (not owner nor renewer) expiring: %v", err)
	}
	if _, err := alice.RenewDelegationToken(ctx, []byte("not an hmac"), time.Hour); !errors.Is(err, kerr.DelegationTokenNotFound) {
		t.Fatalf("renew an unknown hmac: %v", err)
	}
	desc, err := alice.DescribeDelegationTokens(ctx)
	if err != nil || len(desc) != 2 {
		t.Fatalf("alice describes: %+v %v", desc, err)
	}
	if d, err := kadm.NewClient(client("admin")).DescribeDelegationTokens(ctx, kadm.Principal{Name: "bob"}); err != nil || len(d) != 0 {
		t.Fatalf("bob's tokens: %+v %v", d, err)
	}
	if _, err := alice.ExpireDelegationToken(ctx, tok.HMAC, -1); err != nil {
		t.Fatalf("alice expiring: %v", err)
	}
	if err := firstRequest(t, s.addr("SASL_PLAINTEXT"), tokenAuth(tok)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a login with the expired token: %v", err)
	}
}

// createUserACL allows principal op on the User resource user (KIP-373's
// CREATE_TOKENS and DESCRIBE_TOKENS), through CreateAcls.
func createUserACL(ctx context.Context, cl *kgo.Client, principal, user string, op acl.Operation) error {
	req := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType = kmsg.ACLResourceType(acl.ResourceUser)
	c.ResourceName = user
	c.ResourcePatternType = kmsg.ACLResourcePatternTypeLiteral
	c.Principal, c.Host = principal, "*"
	c.Operation = kmsg.ACLOperation(op)
	c.PermissionType = kmsg.ACLPermissionTypeAllow
	req.Creations = append(req.Creations, c)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.Results[0].ErrorCode)
}

// TestDelegationTokensRefused: without delegation.token.secret.key every
// token API answers DELEGATION_TOKEN_AUTH_DISABLED; with it, a PLAINTEXT
// client (no authenticated principal) may not create one
// (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED), and a made-up token id with
// tokenauth fails SASL.
func TestDelegationTokensRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off := startSecured(t, "none", nil)
	addUser(t, off, "alice", "alice-secret")
	cl, err := kgo.NewClient(kgo.SeedBrokers(off.addr("SASL_PLAINTEXT")), kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateDelegationToken(ctx, kadm.CreateDelegationToken{}); !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		t.Fatalf("create without the key: %v", err)
	}
	if _, err := kadm.NewClient(cl).DescribeDelegationTokens(ctx); !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		t.Fatalf("describe without the key: %v", err)
	}
	on := startSecured(t, "none", map[string]string{"delegation.token.secret.key": "k"})
	plain, err := kgo.NewClient(kgo.SeedBrokers(on.addr("PLAINTEXT")))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := kadm.NewClient(plain).CreateDelegationToken(ctx, kadm.CreateDelegationToken{}); !errors.Is(err, kerr.DelegationTokenRequestNotAllowed) {
		t.Fatalf("create over PLAINTEXT: %v", err)
	}
	fake := kadm.DelegationToken{TokenID: "made-up", HMAC: []byte("0123456789")}
	if err := firstRequest(t, on.addr("SASL_PLAINTEXT"), tokenAuth(fake)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a made-up token: %v", err)
	}
}
