package servecmd

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/cli"
	"github.com/stromhq/strom/internal/metadata"
)

// newStorageCmd groups the commands that work on a data directory while
// no broker runs on it, like Kafka's kafka-storage.sh.
func newStorageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Work on a broker's data directory while the broker is stopped",
	}
	cmd.AddCommand(newRebuildMetadataCmd(), newRandomUUIDCmd(), newFormatCmd())
	return cmd
}

func newRandomUUIDCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "random-uuid",
		Short: "Print a new cluster id (for storage format -t)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), broker.RandomClusterID())
			return nil
		},
	}
}

func newFormatCmd() *cobra.Command {
	var clusterID, configFile, dataDir string
	var sets []string
	var ignore bool
	var scram []string
	cmd := &cobra.Command{
		Use:   "format",
		Short: "Format a data directory for a cluster id and node.id, as kafka-storage.sh format does",
		Long: `Write meta.properties (cluster.id, node.id) into the data directory that the
config's log.dirs names (or --data-dir). A node refuses to start on a data
directory of another node.id, and formatting one already formatted is refused
unless --ignore-formatted finds the same identity. Formatting is optional:
the first start of strom serve formats a new directory with a random id.

--add-scram stores SCRAM users (who log in with SCRAM-SHA-256/512 and PLAIN)
before the first start, as Kafka's tool does: the first administrator of a
broker whose only listeners need SASL. The password is salted here; only
the salt and derived keys are written.`,
		Example: `  strom storage random-uuid
  strom storage format -t iKDSfyiITuqsq1u8b9hEQQ -c server1.properties
  strom storage format -t iKDSfyiITuqsq1u8b9hEQQ -c server1.properties \
      --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if clusterID == "" {
				return fmt.Errorf("-t/--cluster-id is required (strom storage random-uuid makes one)")
			}
			props, err := loadProps(configFile, sets)
			if err != nil {
				return err
			}
			cfg := broker.Config{DataDir: dataDir}
			if err := applyLayout(cmd, &cfg, props, configFile); err != nil {
				return err
			}
			bc, err := metadata.NewBrokerConfig(props)
			if err != nil {
				return err
			}
			for _, a := range scram { // before anything is written
				if _, _, _, err := auth.ParseScramArg(a); err != nil {
					return err
				}
			}
			m, err := broker.Format(cfg.DataDir, clusterID, bc.Settings().NodeID, ignore)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "formatted %s: cluster.id %s, node.id %d\n", cfg.DataDir, m.ClusterID, m.NodeID)
			added, err := broker.AddScram(cfg.DataDir, scram)
			if err != nil {
				return err
			}
			for _, a := range added {
				fmt.Fprintf(cmd.OutOrStdout(), "added SCRAM user %s\n", a)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&clusterID, "cluster-id", "t", "", "the cluster id (22 characters, from strom storage random-uuid)")
	f.StringVarP(&configFile, "config", "c", "", "the node's server.properties (node.id, log.dirs)")
	f.StringArrayVar(&sets, "set", nil, "one broker config, name=value (repeatable)")
	f.StringVar(&dataDir, "data-dir", cli.EnvOr("data-dir", "data"), "the data directory, when the config names none")
	f.StringArrayVarP(&scram, "add-scram", "S", nil, `a SCRAM user: 'SCRAM-SHA-256=[name=alice,password=secret]' (or iterations=, salt=, saltedpassword=; repeatable)`)
	f.BoolVarP(&ignore, "ignore-formatted", "g", false, "accept a directory already formatted with the same identity")
	return cmd
}

func newRebuildMetadataCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "rebuild-metadata",
		Short: "Rebuild lost metadata from the partition directories",
		Long: `Rebuild the metadata of a data directory that lost it (its metadata log
__cluster_metadata-0, or the __strom_metadata file of an older Strom), from its
partition directories, so that the broker starts again: it writes a metadata
file, which the next start migrates into the metadata log.

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
