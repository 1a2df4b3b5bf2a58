// Package cli is the strom command line: one file per command. Every
// command here speaks the Kafka protocol through franz-go, so it works
// against any Kafka-compatible cluster; this package imports nothing of
// the broker. The commands that run a broker on this machine (serve,
// storage) are cmd/strom/servecmd's, added to the root by Main's caller.
//
// The Kafka client commands (topic, produce, consume, group, transactions,
// cluster):
// client.go (--brokers, TLS, SASL; the kgo and kadm clients and the
// reachability check), profile.go (the config file's profiles, -X client
// properties, and strom profile), topic.go and topic_describe.go, produce.go and
// produce_opts.go, consume.go, group.go and group_reset.go, transactions.go
// (list, describe, describe-producers, abort: kafka-transactions.sh's
// jobs), cluster.go,
// format.go (the --format parser and the JSON record encoder), output.go
// (tables and JSON for --output), errors.go (every error as one line: what
// went wrong, " — ", what to try), args.go (shared argument parsing).
//
// Conventions: results go to stdout, notes and errors to stderr; a command
// that fails exits 1 after printing "strom: <problem>"; every listing
// takes --output table|json (no -o: -o is consume's start offset, as in
// kcat), with snake_case JSON keys documented in its --help; consume waits
// out an unreachable cluster (wait.go), saying so on stderr; Kafka's own flag spellings (--bootstrap-server, --topic,
// --partitions, --max-messages, ...) are accepted as aliases.
package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionLine is what strom --version and strom version print after
// "strom ": the module version, the VCS revision and time the binary was
// built from (with "modified" for uncommitted changes), and the Go
// toolchain and platform.
func versionLine() string {
	s := version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, at, modified string
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				rev = kv.Value
			case "vcs.time":
				at = kv.Value
			case "vcs.modified":
				if kv.Value == "true" {
					modified = " modified"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			s += " (revision " + rev + modified
			if at != "" {
				s += ", " + at
			}
			s += ")"
		}
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// NewRoot returns the root command with extra commands added (cmd/strom
// adds serve and storage).
func NewRoot(extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "strom",
		Short:         "Strom: a Kafka-compatible streaming platform in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	root.SetVersionTemplate("strom {{.Version}}\n")
	root.AddCommand(extra...)
	root.AddCommand(newTopicCmd(), newUserCmd(), newTokenCmd(), newACLCmd(), newProduceCmd(), newConsumeCmd(), newGroupCmd(), newTransactionsCmd(), newClusterCmd(), newConsoleCmd(), newDemoCmd(), newProfileCmd(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "strom", versionLine()) },
	})
	return root
}

// Main runs the command line, with extra commands, and returns the process
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, extra ...*cobra.Command) int {
	root := NewRoot(extra...)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "strom:", err)
		return 1
	}
	return 0
}
