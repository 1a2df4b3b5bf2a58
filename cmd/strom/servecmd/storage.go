package servecmd

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/cli"
)

// newStorageCmd groups the commands that work on a data directory while
// no broker runs on it, like Kafka's kafka-storage.sh.
func newStorageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Work on a broker's data directory while the broker is stopped",
	}
	cmd.AddCommand(newRebuildMetadataCmd())
	return cmd
}

func newRebuildMetadataCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "rebuild-metadata",
		Short: "Rebuild a lost __strom_metadata from the partition directories",
		Long: `Rebuild the metadata file (__strom_metadata) of a data directory that lost it,
from its partition directories, so that the broker starts again.

Each <topic>-<n> directory makes a topic with as many partitions as its highest
n+1, under the topic id its partition.metadata file names. Topic configs were
only in the lost file: topics come back with the broker's defaults (set them
again with 'strom topic alter'). The broker must be stopped; an existing
metadata file is never replaced.`,
		Example: `  strom storage rebuild-metadata --data-dir ./data`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			rep, err := broker.RebuildMetadata(dataDir, logger)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, t := range rep.Topics {
				fmt.Fprintf(out, "topic %s: %d partition%s, id %s\n", t.Name, t.Partitions, plural(int(t.Partitions)), t.ID)
			}
			if len(rep.NewIDs) > 0 {
				fmt.Fprintf(out, "new topic ids (no single id on disk): %s\n", strings.Join(rep.NewIDs, ", "))
			}
			if len(rep.Gaps) > 0 {
				fmt.Fprintf(out, "partitions missing on disk start empty: %s\n", strings.Join(rep.Gaps, ", "))
			}
			fmt.Fprintf(out, "rebuilt %s/__strom_metadata: %d topic%s; topic configs are the defaults now\n",
				dataDir, len(rep.Topics), plural(len(rep.Topics)))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", cli.EnvOr("data-dir", "data"), "the broker's data directory")
	return cmd
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
