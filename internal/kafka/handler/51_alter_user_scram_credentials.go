package handler

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// AlterUserScramCredentials (KIP-554): create, replace or delete SCRAM
// credentials. The client salts the password (Salt, SaltedPassword,
// Iterations); the broker stores the salt, the iterations and the keys
// derived from the salted password (StoredKey, ServerKey), never it.
//
// Behavior:
//   - One result per user named. A user named twice for the same
//     mechanism (two upsertions, or an upsertion and a deletion):
//     DUPLICATE_RESOURCE for that user, nothing of it applied. An unknown
//     mechanism: UNSUPPORTED_SASL_MECHANISM; iterations outside 4096 to
//     16384, an empty name, salt or salted password:
//     UNACCEPTABLE_CREDENTIAL; deleting a credential that does not exist:
//     RESOURCE_NOT_FOUND. A user with any error has none of its changes
//     applied.
//   - The accepted changes are written to the metadata store in one
//     rewrite before the answer; a failed write answers every user with
//     UNKNOWN_SERVER_ERROR and its message.
//   - Without an authorizer anyone who can connect may alter (as Kafka);
//     on a SASL listener only an authenticated client reaches here.
//
// Version notes: v0 only, flexible.
func init() { register(51, 0, 0, handleAlterUserSCRAM) }

func handleAlterUserSCRAM(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	type userState struct {
		code int16
		msg  string
		alts []metadata.ScramAlteration
	}
	var order []string
	users := map[string]*userState{}
	seen := map[[2]string]bool{}
	get := func(name string) *userState {
		u, ok := users[name]
		if !ok {
			u = &userState{}
			users[name] = u
			order = append(order, name)
		}
		return u
	}
	fail := func(u *userState, code int16, msg string) {
		if u.code == 0 {
			u.code, u.msg = code, msg
		}
	}
	add := func(name string, mech int8, a metadata.ScramAlteration) {
		u := get(name)
		mname, ok := scramMechanisms[mech]
		if !ok {
			fail(u, kerr.UnsupportedSaslMechanism.Code, "unknown SCRAM mechanism")
			return
		}
		if seen[[2]string{name, mname}] {
			fail(u, kerr.DuplicateResource.Code, "a user credential cannot be altered twice in one request")
			return
		}
		seen[[2]string{name, mname}] = true
		a.User, a.Mechanism = name, mname
		u.alts = append(u.alts, a)
	}
	for _, d := range r.Deletions {
		add(d.Name, d.Mechanism, metadata.ScramAlteration{Delete: true})
	}
	for _, up := range r.Upsertions {
		a := metadata.ScramAlteration{}
		if m, ok := scramMechanisms[up.Mechanism]; ok && len(up.SaltedPassword) > 0 {
			c, err := auth.FromSaltedPassword(m, up.SaltedPassword, up.Salt, int(up.Iterations))
			if err == nil {
				a.Credential = metadata.ScramCredential{Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey, Iterations: c.Iterations}
			}
		}
		if len(up.SaltedPassword) == 0 {
			fail(get(up.Name), kerr.UnacceptableCredential.Code, "empty salted password")
		}
		add(up.Name, up.Mechanism, a)
	}
	var alts []metadata.ScramAlteration
	var owner []*userState
	for _, name := range order {
		u := users[name]
		if name == "" {
			fail(u, kerr.UnacceptableCredential.Code, "empty user name")
		}
		if u.code != 0 {
			continue
		}
		for _, a := range u.alts {
			alts = append(alts, a)
			owner = append(owner, u)
		}
	}
	// The store applies a user's changes together or not at all.
	errs, err := h.c.AlterScram(alts)
	for i, e := range errs {
		if e != nil {
			code, msg := scramErrorCode(e)
			fail(owner[i], code, msg)
		}
	}
	for _, name := range order {
		u := users[name]
		if err != nil && u.code == 0 {
			fail(u, kerr.UnknownServerError.Code, err.Error())
		}
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = name
		res.ErrorCode = u.code
		if u.msg != "" {
			res.ErrorMessage = kmsg.StringPtr(u.msg)
		}
		resp.Results = append(resp.Results, res)
	}
	return now(resp)
}

func scramErrorCode(err error) (int16, string) {
	switch {
	case errors.Is(err, metadata.ErrUnknownScramUser):
		return kerr.ResourceNotFound.Code, "attempt to delete a user credential that does not exist"
	case errors.Is(err, metadata.ErrUnsupportedMechanism):
		return kerr.UnsupportedSaslMechanism.Code, err.Error()
	case errors.Is(err, metadata.ErrUnacceptableCred):
		return kerr.UnacceptableCredential.Code, err.Error()
	}
	return kerr.UnknownServerError.Code, err.Error()
}
