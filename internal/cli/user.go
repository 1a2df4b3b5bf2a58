package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// newUserCmd manages SCRAM users (KIP-554's AlterUserScramCredentials and
// DescribeUserScramCredentials), as kafka-configs.sh --entity-type users
// does: against Strom or any Kafka cluster.
func newUserCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Create, list and delete SCRAM users (SASL PLAIN and SCRAM logins)",
		Example: `  STROM_USER_PASSWORD=s3cret strom user create alice
  strom user list
  strom user delete alice`,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(userCreateCmd(conn), userListCmd(conn), userDeleteCmd(conn))
	return kafkaCommand(cmd)
}

var scramMechanisms = map[string]kadm.ScramMechanism{"SCRAM-SHA-256": kadm.ScramSha256, "SCRAM-SHA-512": kadm.ScramSha512}

func parseMechanisms(names []string) ([]kadm.ScramMechanism, error) {
	var out []kadm.ScramMechanism
	for _, n := range names {
		m, ok := scramMechanisms[strings.ToUpper(n)]
		if !ok {
			return nil, usageErr("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", n)
		}
		out = append(out, m)
	}
	return out, nil
}

func userCreateCmd(conn *connFlags) *cobra.Command {
	var password string
	var mechanisms []string
	var iterations int32
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user, or set a new password for one",
		Long: `Create a SCRAM user, or replace its password. The password is salted here
(PBKDF2, a random 24-byte salt); the broker stores only the salt and the keys
derived from it. The same user logs in with SASL PLAIN too, on Strom.

The password comes from --password or, better (kept out of ps and shell
history), the STROM_USER_PASSWORD environment variable.`,
		Example: `  STROM_USER_PASSWORD=s3cret strom user create alice
  strom user create bob --password s3cret --mechanism SCRAM-SHA-512 --iterations 8192`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if password == "" {
				password = EnvOr("user-password", "")
			}
			if password == "" {
				return usageErr("no password: give --password or set STROM_USER_PASSWORD")
			}
			mechs, err := parseMechanisms(mechanisms)
			if err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			// One request per mechanism: some brokers (kfake) refuse
			// a user named twice in one request, which Kafka allows
			// for different mechanisms.
			for _, m := range mechs {
				res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: args[0], Mechanism: m, Iterations: iterations, Password: password}})
				if err != nil {
					return conn.explain(err)
				}
				for _, r := range res {
					if r.Err != nil {
						return fmt.Errorf("user %s: %w", r.User, conn.explain(r.Err))
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s\n", args[0], strings.Join(mechanisms, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "the password (better: env STROM_USER_PASSWORD)")
	cmd.Flags().StringSliceVar(&mechanisms, "mechanism", []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM mechanisms to store a credential for")
	cmd.Flags().Int32Var(&iterations, "iterations", 8192, "PBKDF2 iterations, 4096 to 16384")
	return cmd
}

type userInfo struct {
	User       string          `json:"user"`
	Mechanisms []userMechanism `json:"mechanisms"`
}

type userMechanism struct {
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

func userListCmd(conn *connFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List SCRAM users and their mechanisms (never a secret)",
		Long: `List the users that have SCRAM credentials, with the mechanisms and
iteration counts of each. Salts and keys are never shown: the broker does
not send them.

JSON: [{"user","mechanisms":[{"mechanism","iterations"}]}]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			described, err := adm.DescribeUserSCRAMs(ctx)
			if err != nil {
				return conn.explain(err)
			}
			users := []userInfo{}
			for _, d := range described.Sorted() {
				if d.Err != nil {
					return fmt.Errorf("user %s: %w", d.User, conn.explain(d.Err))
				}
				u := userInfo{User: d.User, Mechanisms: []userMechanism{}}
				for _, ci := range d.CredInfos {
					u.Mechanisms = append(u.Mechanisms, userMechanism{Mechanism: ci.Mechanism.String(), Iterations: ci.Iterations})
				}
				sort.Slice(u.Mechanisms, func(i, j int) bool { return u.Mechanisms[i].Mechanism < u.Mechanisms[j].Mechanism })
				users = append(users, u)
			}
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), users)
			}
			t := newTable("USER", "MECHANISM", "ITERATIONS")
			for _, u := range users {
				for _, m := range u.Mechanisms {
					t.add(u.User, m.Mechanism, m.Iterations)
				}
			}
			return t.write(cmd.OutOrStdout())
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func userDeleteCmd(conn *connFlags) *cobra.Command {
	var mechanisms []string
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user's SCRAM credentials (all, or --mechanism ones)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			mechs, err := parseMechanisms(mechanisms)
			if err != nil {
				return err
			}
			if len(mechs) == 0 {
				described, err := adm.DescribeUserSCRAMs(ctx, args[0])
				if err != nil {
					return conn.explain(err)
				}
				d := described[args[0]]
				if d.Err != nil {
					return fmt.Errorf("user %s: %w", args[0], conn.explain(d.Err))
				}
				for _, ci := range d.CredInfos {
					mechs = append(mechs, ci.Mechanism)
				}
			}
			for _, m := range mechs { // one request each, as create
				res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: args[0], Mechanism: m}}, nil)
				if err != nil {
					return conn.explain(err)
				}
				for _, r := range res {
					if r.Err != nil {
						return fmt.Errorf("user %s: %w", r.User, conn.explain(r.Err))
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted user %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&mechanisms, "mechanism", nil, "delete only these mechanisms' credentials")
	return cmd
}
