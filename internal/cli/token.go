package cli

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// newTokenCmd is Kafka's kafka-delegation-tokens.sh: delegation tokens
// (KIP-48), which let a job log in as their owner with SCRAM (the token id
// as the user, the HMAC as the password) without the owner's password.
func newTokenCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list, renew and expire delegation tokens (SCRAM logins without a password)",
		Long: `Delegation tokens (KIP-48) let a job or device log in as a user without the
user's password: SCRAM-SHA-256/512 with the token id as the user name, the
token's HMAC (base64, as printed here) as the password, and the tokenauth
extension (strom: --sasl-token; Java clients: tokenauth="true" in the JAAS
line; franz-go: scram.Auth{IsToken: true}). The brokers need
delegation.token.secret.key. Only a user logged in with a password or a
client certificate may create, renew or expire tokens.`,
		Example: `  strom token create --renewer User:ops --max-lifetime 72h
  strom token list
  strom token renew <hmac> --period 24h
  strom token expire <hmac>
  STROM_SASL_PASSWORD=<hmac> strom topic list --sasl-mechanism SCRAM-SHA-512 --sasl-user <token id> --sasl-token`,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(tokenCreateCmd(conn), tokenListCmd(conn), tokenRenewCmd(conn), tokenExpireCmd(conn))
	return kafkaCommand(cmd)
}

// tokenInfo is a token as list and create print it (JSON).
type tokenInfo struct {
	ID       string    `json:"token_id"`
	HMAC     string    `json:"hmac"`
	Owner    string    `json:"owner"`
	Renewers []string  `json:"renewers"`
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
	Max      time.Time `json:"max"`
}

func principalString(p kadm.Principal) string {
	if p.Type == "" {
		p.Type = "User"
	}
	return p.Type + ":" + p.Name
}

// parsePrincipal takes "User:alice" or "alice".
func parsePrincipal(s string) (kadm.Principal, error) {
	typ, name, ok := strings.Cut(s, ":")
	if !ok {
		typ, name = "User", s
	}
	if typ != "User" || name == "" {
		return kadm.Principal{}, usageErr("principal %q: want User:<name>", s)
	}
	return kadm.Principal{Type: typ, Name: name}, nil
}

func toTokenInfo(t kadm.DelegationToken) tokenInfo {
	ti := tokenInfo{ID: t.TokenID, HMAC: base64.StdEncoding.EncodeToString(t.HMAC), Owner: principalString(t.Owner),
		Renewers: []string{}, Issued: t.IssueTimestamp, Expires: t.ExpiryTimestamp, Max: t.MaxTimestamp}
	for _, r := range t.Renewers {
		ti.Renewers = append(ti.Renewers, principalString(r))
	}
	return ti
}

func writeTokens(cmd *cobra.Command, output string, ts []tokenInfo) error {
	if output == outJSON {
		return writeJSON(cmd.OutOrStdout(), ts)
	}
	t := newTable("TOKENID", "HMAC", "OWNER", "RENEWERS", "ISSUED", "EXPIRES", "MAX")
	for _, ti := range ts {
		t.add(ti.ID, ti.HMAC, ti.Owner, strings.Join(ti.Renewers, ","), ti.Issued.Format(time.RFC3339), ti.Expires.Format(time.RFC3339), ti.Max.Format(time.RFC3339))
	}
	return t.write(cmd.OutOrStdout())
}

func tokenCreateCmd(conn *connFlags) *cobra.Command {
	var renewers []string
	var owner, output string
	var maxLife time.Duration
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a delegation token for yourself (or, with CREATE_TOKENS on the user, for --owner)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var req kadm.CreateDelegationToken
			for _, r := range renewers {
				p, err := parsePrincipal(r)
				if err != nil {
					return err
				}
				req.Renewers = append(req.Renewers, p)
			}
			if owner != "" {
				p, err := parsePrincipal(owner)
				if err != nil {
					return err
				}
				req.Owner = &p
			}
			req.MaxLifetime = maxLife
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			t, err := adm.CreateDelegationToken(ctx, req)
			if err != nil {
				return conn.explain(err)
			}
			return writeTokens(cmd, output, []tokenInfo{toTokenInfo(t)})
		},
	}
	cmd.Flags().StringArrayVar(&renewers, "renewer", nil, "a principal that may renew or expire the token, User:<name> (repeatable)")
	cmd.Flags().StringVar(&owner, "owner", "", "the user the token logs in as (default: you)")
	cmd.Flags().DurationVar(&maxLife, "max-lifetime", 0, "no renewal past this long from now (0: the broker's delegation.token.max.lifetime.ms)")
	addOutputFlag(cmd, &output)
	return cmd
}

func tokenListCmd(conn *connFlags) *cobra.Command {
	var owners []string
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the delegation tokens you may see (with their HMACs)",
		Long: `List delegation tokens: yours, those you may renew, and those ACLs let you
describe; --owner narrows to some owners. JSON: [{"token_id","hmac","owner",
"renewers","issued","expires","max"}]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var ps []kadm.Principal
			for _, o := range owners {
				p, err := parsePrincipal(o)
				if err != nil {
					return err
				}
				ps = append(ps, p)
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			ts, err := adm.DescribeDelegationTokens(ctx, ps...)
			if err != nil {
				return conn.explain(err)
			}
			out := []tokenInfo{}
			for _, t := range ts {
				out = append(out, toTokenInfo(t))
			}
			return writeTokens(cmd, output, out)
		},
	}
	cmd.Flags().StringArrayVar(&owners, "owner", nil, "only tokens of this owner, User:<name> (repeatable)")
	addOutputFlag(cmd, &output)
	return cmd
}

func decodeHMAC(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, usageErr("%q is not a token HMAC (base64, as strom token create prints it)", s)
	}
	return b, nil
}

func tokenRenewCmd(conn *connFlags) *cobra.Command {
	return tokenExpiryCmd(conn, "renew HMAC", "Move a token's expiry to now plus --period (never past its max)",
		"the new lifetime from now (0: the broker's delegation.token.expiry.time.ms)", true)
}

func tokenExpireCmd(conn *connFlags) *cobra.Command {
	return tokenExpiryCmd(conn, "expire HMAC", "Revoke a token now, or make it expire after --period",
		"expire after this long instead of now", false)
}

// tokenExpiryCmd is renew and expire: both move a token's expiry by its
// HMAC; a --period of 0 means the broker's default lifetime for renew,
// and now (the token removed) for expire, sent as a negative period as
// Kafka's requests want it.
func tokenExpiryCmd(conn *connFlags, use, short, periodHelp string, renew bool) *cobra.Command {
	var period time.Duration
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mac, err := decodeHMAC(args[0])
			if err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			p := period
			if p <= 0 {
				p = -time.Millisecond
			}
			var exp time.Time
			if renew {
				exp, err = adm.RenewDelegationToken(ctx, mac, p)
			} else {
				exp, err = adm.ExpireDelegationToken(ctx, mac, p)
			}
			if err != nil {
				return conn.explain(err)
			}
			if !renew && period <= 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "token expired")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token expires %s\n", exp.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().DurationVar(&period, "period", 0, periodHelp)
	return cmd
}
