package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// DescribeUserScramCredentials (KIP-554): which users have SCRAM
// credentials, for which mechanisms, with how many iterations. Never a
// salt or a key.
//
// Behavior:
//   - Users null or empty: every user with a credential.
//   - A named user without one: RESOURCE_NOT_FOUND for that user; a user
//     named twice: DUPLICATE_RESOURCE for it.
//   - Without an authorizer anyone may describe (as Kafka).
//
// Version notes: v0 only, flexible.
func init() { register(50, 0, 0, handleDescribeUserSCRAM) }

// scramMechanisms are the wire values of the SCRAM mechanisms (KIP-554).
var scramMechanisms = map[int8]string{1: metadata.ScramSHA256, 2: metadata.ScramSHA512}

func scramMechanismCode(name string) int8 {
	for code, n := range scramMechanisms {
		if n == name {
			return code
		}
	}
	return 0
}

func handleDescribeUserSCRAM(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	sec := h.c.Security()
	users := sec.ScramUsers()
	explicit := len(r.Users) > 0
	seen := map[string]int{}
	if explicit {
		users = users[:0:0]
		for _, u := range r.Users {
			if seen[u.Name]++; seen[u.Name] == 1 {
				users = append(users, u.Name)
			}
		}
	}
	for _, u := range users {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		mechs := sec.ScramMechanisms(u)
		switch {
		case seen[u] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("user named more than once")
		case len(mechs) == 0:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("attempt to describe a user credential that does not exist")
		}
		if res.ErrorCode == 0 {
			for _, m := range []string{metadata.ScramSHA256, metadata.ScramSHA512} {
				if it, ok := mechs[m]; ok {
					ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					ci.Mechanism, ci.Iterations = scramMechanismCode(m), int32(it)
					res.CredentialInfos = append(res.CredentialInfos, ci)
				}
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return now(resp)
}
