// Package servecmd holds the commands that run a broker on this machine:
// `strom serve` (the composition root, internal/broker, behind flags) and
// `strom storage` (work on a stopped broker's data directory). They live
// beside cmd/strom, the root's only caller besides tests that re-execute
// themselves as a broker, so that internal/cli stays a pure Kafka client
// with no import of the broker.
package servecmd

import (
	"github.com/spf13/cobra"

	"github.com/stromhq/strom/internal/cli"
)

// Commands returns serve (with the demo generator's flags) and storage,
// for cli.Main.
func Commands() []*cobra.Command {
	return []*cobra.Command{cli.WithDemo(newServeCmd()), newStorageCmd()}
}
