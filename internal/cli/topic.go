package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newTopicCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := &cobra.Command{
		Use:     "topic",
		Aliases: []string{"topics"},
		Short:   "Create, list, describe, configure and delete topics",
		Long: `Manage topics on any Kafka-compatible cluster (Strom, Apache Kafka, Redpanda).

These replace kafka-topics.sh and kafka-configs.sh for topics; their flag
spellings (--topic, --partitions, --replication-factor, --config,
--bootstrap-server) work too.`,
		Example: `  strom topic create orders --partitions 3
  strom topic list
  strom topic describe orders
  strom topic alter-config orders --set retention.ms=86400000
  strom topic add-partitions orders --partitions 6
  strom topic reassign move.json
  strom topic elect-leaders --topic orders
  strom topic delete orders`,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(topicCreateCmd(conn), topicListCmd(conn), topicDescribeCmd(conn),
		topicAlterConfigCmd(conn), topicAddPartitionsCmd(conn), topicDeleteCmd(conn), topicCleanerCmd(),
		topicElectLeadersCmd(conn), topicReassignCmd(conn))
	return kafkaCommand(cmd)
}

func topicCreateCmd(conn *connFlags) *cobra.Command {
	var (
		flagTopics  []string
		partitions  int32
		rf          int16
		configs     []string
		ifNotExists bool
		dryRun      bool
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Long: `Create one or more topics. Without --partitions or --replication-factor
the cluster's defaults (num.partitions, default.replication.factor) apply.`,
		Example: `  strom topic create orders
  strom topic create orders payments --partitions 6 --replication-factor 3
  strom topic create logs --config retention.ms=86400000 --config cleanup.policy=delete
  strom topic create --topic quickstart-events --bootstrap-server localhost:9092`,
		RunE: func(cmd *cobra.Command, args []string) error {
			topics, err := names(args, flagTopics, "topic", `"strom topic create orders"`)
			if err != nil {
				return err
			}
			if partitions == 0 || partitions < -1 {
				return usageErr("--partitions %d: want at least 1", partitions)
			}
			if rf == 0 || rf < -1 {
				return usageErr("--replication-factor %d: want at least 1", rf)
			}
			pairs, err := parseConfigs("--config", configs)
			if err != nil {
				return err
			}
			cfg := map[string]*string{}
			for _, kv := range pairs {
				cfg[kv[0]] = kadm.StringPtr(kv[1])
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			create, verb := adm.CreateTopics, "created"
			if dryRun {
				create, verb = adm.ValidateCreateTopics, "would create"
			}
			resps, err := create(ctx, partitions, rf, cfg, topics...)
			if err != nil {
				return conn.explain(err)
			}
			out, fails := cmd.OutOrStdout(), &failures{w: cmd.ErrOrStderr()}
			for _, t := range topics {
				r, ok := resps[t]
				switch {
				case !ok:
					fails.add(&problem{msg: fmt.Sprintf("topic %q: no answer from the cluster", t)})
				case errors.Is(r.Err, kerr.TopicAlreadyExists) && ifNotExists:
					fmt.Fprintf(out, "topic %s already exists\n", t)
				case r.Err != nil:
					fails.add(explain(r.Err, errContext{topic: t, msg: r.ErrMessage}))
				case r.NumPartitions > 0 && r.ReplicationFactor > 0:
					fmt.Fprintf(out, "%s topic %s: %s, replication factor %d\n", verb, t, plural(int(r.NumPartitions), "partition"), r.ReplicationFactor)
				default:
					fmt.Fprintf(out, "%s topic %s\n", verb, t)
				}
			}
			return fails.err()
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&flagTopics, "topic", "t", nil, "topic to create (repeatable; same as the arguments)")
	f.Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (default: the cluster's num.partitions)")
	f.Int16VarP(&rf, "replication-factor", "r", -1, "copies of each partition (default: the cluster's default.replication.factor)")
	// -1 means "the cluster's default", which the usage says; shown as
	// a zero value, --help prints no second "(default -1)".
	f.Lookup("partitions").DefValue = "0"
	f.Lookup("replication-factor").DefValue = "0"
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config name=value (repeatable), e.g. retention.ms=86400000")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "succeed if the topic already exists")
	f.BoolVar(&dryRun, "dry-run", false, "only validate the request; create nothing")
	return cmd
}

type topicListEntry struct {
	Topic             string `json:"topic"`
	ID                string `json:"id,omitempty"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

func topicListCmd(conn *connFlags) *cobra.Command {
	var output string
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Long: `List the cluster's topics with their partition count and replication
factor, sorted by name. Internal topics (__consumer_offsets, ...) are
shown with --internal.

JSON: [{"topic","id","partitions","replication_factor","internal"}].`,
		Example: `  strom topic list
  strom topic list --output json | jq -r '.[].topic'
  strom topic list --bootstrap-server localhost:9092`,
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
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			tds, err := list(ctx)
			if err != nil {
				return conn.explain(err)
			}
			entries := []topicListEntry{}
			for _, name := range tds.Names() {
				td := tds[name]
				if td.Err != nil {
					continue // deleted while listing, or not authorized to describe
				}
				entries = append(entries, topicListEntry{
					Topic: name, ID: topicID(td.ID), Partitions: len(td.Partitions),
					ReplicationFactor: replicationFactor(td), Internal: td.IsInternal,
				})
			}
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), entries)
			}
			t := newTable("TOPIC", "PARTITIONS", "REPLICATION-FACTOR")
			for _, e := range entries {
				t.add(e.Topic, e.Partitions, e.ReplicationFactor)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics")
	return cmd
}

func topicDeleteCmd(conn *connFlags) *cobra.Command {
	var flagTopics []string
	var ifExists bool
	cmd := &cobra.Command{
		Use:     "delete TOPIC...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Example: `  strom topic delete orders
  strom topic delete --topic test1 --bootstrap-server localhost:9092
  strom topic delete old-a old-b --if-exists`,
		RunE: func(cmd *cobra.Command, args []string) error {
			topics, err := names(args, flagTopics, "topic", `"strom topic delete orders"`)
			if err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteTopics(ctx, topics...)
			if err != nil {
				return conn.explain(err)
			}
			out, fails := cmd.OutOrStdout(), &failures{w: cmd.ErrOrStderr()}
			for _, t := range topics {
				r, ok := resps[t]
				switch {
				case !ok:
					fails.add(&problem{msg: fmt.Sprintf("topic %q: no answer from the cluster", t)})
				case errors.Is(r.Err, kerr.UnknownTopicOrPartition) && ifExists:
					fmt.Fprintf(out, "topic %s does not exist\n", t)
				case r.Err != nil:
					fails.add(explain(r.Err, errContext{topic: t, msg: r.ErrMessage, deleting: true}))
				default:
					fmt.Fprintf(out, "deleted topic %s\n", t)
				}
			}
			return fails.err()
		},
	}
	cmd.Flags().StringArrayVarP(&flagTopics, "topic", "t", nil, "topic to delete (repeatable; same as the arguments)")
	cmd.Flags().BoolVar(&ifExists, "if-exists", false, "succeed if the topic does not exist")
	return cmd
}

func topicAddPartitionsCmd(conn *connFlags) *cobra.Command {
	var flagTopics []string
	var total, add int
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "add-partitions TOPIC...",
		Short: "Add partitions to topics",
		Long: `Raise a topic's partition count, to a total (--partitions, as
kafka-topics.sh --alter takes it) or by a number (--add). Partitions can
never be removed. Keyed records map to partitions by hash, so adding
partitions moves where new records of a key land.`,
		Example: `  strom topic add-partitions orders --partitions 12
  strom topic add-partitions orders --add 3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			topics, err := names(args, flagTopics, "topic", `"strom topic add-partitions orders --add 3"`)
			if err != nil {
				return err
			}
			if (total > 0) == (add > 0) {
				return usageErr("give either --partitions N (the new total) or --add N (how many to add), with N at least 1")
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			tds, err := adm.ListTopics(ctx, topics...)
			if err != nil {
				return conn.explain(err)
			}
			out, fails := cmd.OutOrStdout(), &failures{w: cmd.ErrOrStderr()}
			for _, t := range topics {
				td := tds[t]
				if td.Err != nil {
					fails.add(explain(td.Err, errContext{topic: t}))
					continue
				}
				have := len(td.Partitions)
				want := total
				if add > 0 {
					want = have + add
				}
				if want <= have {
					fails.add(&problem{msg: fmt.Sprintf("topic %q already has %d partitions", t, have), hint: "partitions can only be added; give a larger --partitions"})
					continue
				}
				update := adm.UpdatePartitions
				if dryRun {
					update = adm.ValidateUpdatePartitions
				}
				resps, err := update(ctx, want, t)
				if err != nil {
					fails.add(conn.explain(err))
					continue
				}
				if r := resps[t]; r.Err != nil {
					fails.add(explain(r.Err, errContext{topic: t, msg: r.ErrMessage}))
					continue
				}
				if dryRun {
					fmt.Fprintf(out, "would add %d partitions to topic %s (%d → %d)\n", want-have, t, have, want)
				} else {
					fmt.Fprintf(out, "added %s to topic %s (%d → %d)\n", plural(int(want-have), "partition"), t, have, want)
				}
			}
			return fails.err()
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&flagTopics, "topic", "t", nil, "topic to grow (repeatable; same as the arguments)")
	f.IntVarP(&total, "partitions", "p", 0, "the new total number of partitions")
	f.IntVar(&add, "add", 0, "how many partitions to add")
	f.BoolVar(&dryRun, "dry-run", false, "only validate the request; change nothing")
	return cmd
}

// topicID renders a topic id as Kafka's tools do (URL-safe base64, no
// padding); "" if the cluster does not use ids.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func replicationFactor(td kadm.TopicDetail) int {
	if p, ok := td.Partitions[0]; ok {
		return len(p.Replicas)
	}
	for _, p := range td.Partitions {
		return len(p.Replicas)
	}
	return 0
}

// existingTopics checks that every topic exists, returning their details.
func existingTopics(ctx context.Context, adm *kadm.Client, conn *connFlags, topics []string) (kadm.TopicDetails, error) {
	tds, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		ec := conn.with(errContext{})
		if len(topics) == 1 {
			ec.topic = topics[0]
		}
		return nil, explain(err, ec)
	}
	for _, t := range topics {
		td, ok := tds[t]
		if !ok {
			return nil, explain(kerr.UnknownTopicOrPartition, errContext{topic: t})
		}
		if td.Err != nil {
			return nil, explain(td.Err, errContext{topic: t})
		}
	}
	return tds, nil
}

// sortedPartitions lists a topic's partition numbers in order.
func sortedPartitions(td kadm.TopicDetail) []int32 {
	ps := make([]int32, 0, len(td.Partitions))
	for p := range td.Partitions {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// blankLine separates blocks of output, but not before the first.
func blankLine(w io.Writer, i int) {
	if i > 0 {
		fmt.Fprintln(w)
	}
}
