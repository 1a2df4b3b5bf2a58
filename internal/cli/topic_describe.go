package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicDescription struct {
	Topic             string                 `json:"topic"`
	ID                string                 `json:"id,omitempty"`
	Internal          bool                   `json:"internal"`
	ReplicationFactor int                    `json:"replication_factor"`
	Partitions        []partitionDescription `json:"partitions"`
	Configs           []configEntry          `json:"configs"`
}

type partitionDescription struct {
	Partition int32 `json:"partition"`
	Leader    int32 `json:"leader"`
	// LeaderEpoch is the partition's leader epoch (bumped by every change
	// of leader; on a replicated partition the raft term its leader
	// leads in), -1 when unknown.
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	// Adding and removing replicas of a reassignment in progress
	// (ListPartitionReassignments), as kafka-topics.sh --describe shows.
	AddingReplicas   []int32 `json:"adding_replicas,omitempty"`
	RemovingReplicas []int32 `json:"removing_replicas,omitempty"`
	LogStartOffset   int64   `json:"log_start_offset"`
	LogEndOffset     int64   `json:"log_end_offset"`
	SizeBytes        int64   `json:"size_bytes"` // -1: unknown
	Error            string  `json:"error,omitempty"`
}

type configEntry struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

func topicDescribeCmd(conn *connFlags) *cobra.Command {
	var flagTopics []string
	var output string
	cmd := &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show a topic's partitions, offsets, sizes and configs",
		Long: `Describe topics: per partition the leader and its epoch, replicas, in-sync replicas,
log start and end offsets and size on disk (from the leader), then every
config with its value and its source (DYNAMIC_TOPIC_CONFIG is set on the
topic, DEFAULT_CONFIG is the cluster's default, ...).

JSON: [{"topic","id","internal","replication_factor",
  "partitions":[{"partition","leader","leader_epoch","replicas","isr","offline_replicas",
                 "adding_replicas","removing_replicas" (while reassigning),
                 "log_start_offset","log_end_offset","size_bytes"}],
  "configs":[{"name","value","source","sensitive"}]}]
A size the cluster does not report is -1; a sensitive value is null.`,
		Example: `  strom topic describe orders
  strom topic describe --topic test1 --bootstrap-server localhost:9092
  strom topic describe orders --output json | jq '.[0].partitions[].log_end_offset'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			topics, err := names(args, flagTopics, "topic", `"strom topic describe orders"`)
			if err != nil {
				return err
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			tds, err := existingTopics(ctx, adm, conn, topics)
			if err != nil {
				return err
			}
			starts, err := adm.ListStartOffsets(ctx, topics...)
			if err != nil {
				return conn.explain(err)
			}
			ends, err := adm.ListEndOffsets(ctx, topics...)
			if err != nil {
				return conn.explain(err)
			}
			note := func(what string, err error) {
				fmt.Fprintf(cmd.ErrOrStderr(), "strom: note: %s unavailable: %v\n", what, conn.explain(err))
			}
			set := kadm.TopicsSet{}
			for _, t := range topics {
				set.Add(t, sortedPartitions(tds[t])...)
			}
			missing, err := missingAPIs(ctx, adm, 35, 32, 46)
			if err != nil {
				return conn.explain(err)
			}
			var dirs kadm.DescribedAllLogDirs
			var cfgs kadm.ResourceConfigs
			if slices.Contains(missing, apiName(35)) {
				note("partition sizes", &problem{msg: "the cluster does not serve DescribeLogDirs"})
			} else if dirs, err = adm.DescribeAllLogDirs(ctx, set); err != nil {
				// One broker down (a failover) leaves the others' sizes:
				// keep them and name the brokers that did not answer.
				var se *kadm.ShardErrors
				if errors.As(err, &se) && !se.AllFailed {
					for _, e := range se.Errs {
						// Not conn.explain: it speaks of every seed, and
						// the others answered.
						from := fmt.Sprintf("broker %d (%s:%d)", e.Broker.NodeID, e.Broker.Host, e.Broker.Port)
						if e.Broker.NodeID < 0 {
							from = "a replica's broker not in the metadata (down or fenced)"
						}
						fmt.Fprintf(cmd.ErrOrStderr(), "strom: note: partition sizes from %s unavailable: %v\n", from, e.Err)
					}
				} else {
					note("partition sizes", err)
					dirs = nil
				}
			}
			if slices.Contains(missing, apiName(32)) {
				note("configs", &problem{msg: "the cluster does not serve DescribeConfigs"})
			} else if cfgs, err = adm.DescribeTopicConfigs(ctx, topics...); err != nil {
				note("configs", err)
				cfgs = nil
			}
			var moving kadm.ListPartitionReassignmentsResponses
			if !slices.Contains(missing, apiName(46)) {
				if moving, err = adm.ListPartitionReassignments(ctx, set); err != nil {
					note("reassignments", err)
					moving = nil
				}
			}
			var descs []topicDescription
			for _, t := range topics {
				d := describeTopic(tds[t], starts, ends, dirs)
				for i := range d.Partitions {
					if m, ok := moving[t][d.Partitions[i].Partition]; ok {
						d.Partitions[i].AddingReplicas, d.Partitions[i].RemovingReplicas = nonNil(m.AddingReplicas), nonNil(m.RemovingReplicas)
					}
				}
				if rc, err := cfgs.On(t, nil); err == nil {
					if rc.Err != nil {
						note("configs of "+t, explain(rc.Err, errContext{topic: t, msg: rc.ErrMessage}))
					}
					d.Configs = configEntries(rc.Configs)
				}
				descs = append(descs, d)
			}
			return writeDescriptions(cmd.OutOrStdout(), output, descs, printTopicDescription)
		},
	}
	cmd.Flags().StringArrayVarP(&flagTopics, "topic", "t", nil, "topic to describe (repeatable; same as the arguments)")
	addOutputFlag(cmd, &output)
	return cmd
}

func describeTopic(td kadm.TopicDetail, starts, ends kadm.ListedOffsets, dirs kadm.DescribedAllLogDirs) topicDescription {
	d := topicDescription{
		Topic: td.Topic, ID: topicID(td.ID), Internal: td.IsInternal,
		ReplicationFactor: replicationFactor(td), Partitions: []partitionDescription{}, Configs: []configEntry{},
	}
	for _, p := range sortedPartitions(td) {
		pd := td.Partitions[p]
		out := partitionDescription{
			Partition: p, Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch,
			Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR), OfflineReplicas: nonNil(pd.OfflineReplicas),
			LogStartOffset: -1, LogEndOffset: -1, SizeBytes: -1,
		}
		if pd.Err != nil {
			out.Error = explain(pd.Err, errContext{topic: td.Topic}).Error()
		}
		if o, ok := starts.Lookup(td.Topic, p); ok && o.Err == nil {
			out.LogStartOffset = o.Offset
		}
		if o, ok := ends.Lookup(td.Topic, p); ok && o.Err == nil {
			out.LogEndOffset = o.Offset
		}
		out.SizeBytes = partitionSize(dirs, td.Topic, p, pd.Leader)
		d.Partitions = append(d.Partitions, out)
	}
	return d
}

// partitionSize is the partition's size on its leader, or on the largest
// replica if the leader did not report it; -1 if no broker did.
func partitionSize(dirs kadm.DescribedAllLogDirs, t string, p, leader int32) int64 {
	if dirs == nil {
		return -1
	}
	if ds, ok := dirs[leader]; ok {
		if dp, ok := ds.LookupPartition(t, p); ok {
			return dp.Size
		}
	}
	size := int64(-1)
	dirs.Each(func(d kadm.DescribedLogDir) {
		if dp, ok := d.Topics.Lookup(t, p); ok && dp.Size > size {
			size = dp.Size
		}
	})
	return size
}

func configEntries(cs []kadm.Config) []configEntry {
	out := make([]configEntry, 0, len(cs))
	for _, c := range cs {
		e := configEntry{Name: c.Key, Value: c.Value, Source: configSource(c.Source), Sensitive: c.Sensitive}
		if c.Sensitive {
			e.Value = nil
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func configSource(s kmsg.ConfigSource) string { return s.String() }

func printTopicDescription(w io.Writer, d topicDescription) {
	head := fmt.Sprintf("Topic: %s", d.Topic)
	if d.ID != "" {
		head += "  ID: " + d.ID
	}
	head += fmt.Sprintf("  Partitions: %d  Replication factor: %d", len(d.Partitions), d.ReplicationFactor)
	if d.Internal {
		head += "  Internal: true"
	}
	fmt.Fprintf(w, "%s\n\n", head)
	t := newTable("PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START", "LOG-END", "SIZE")
	for _, p := range d.Partitions {
		leader := fmt.Sprint(p.Leader)
		if p.Leader < 0 {
			leader = "none"
		}
		if p.Error != "" {
			leader += " (" + p.Error + ")"
		}
		epoch := "-"
		if p.LeaderEpoch >= 0 {
			epoch = fmt.Sprint(p.LeaderEpoch)
		}
		t.add(p.Partition, leader, epoch, int32List(p.Replicas), int32List(p.ISR),
			offsetCell(p.LogStartOffset), offsetCell(p.LogEndOffset), humanBytes(p.SizeBytes))
	}
	t.write(w)
	for _, p := range d.Partitions {
		if p.AddingReplicas != nil || p.RemovingReplicas != nil {
			fmt.Fprintf(w, "partition %d is being reassigned: adding replicas %s, removing replicas %s\n",
				p.Partition, int32List(p.AddingReplicas), int32List(p.RemovingReplicas))
		}
	}
	if len(d.Configs) == 0 {
		return
	}
	fmt.Fprintln(w)
	t = newTable("CONFIG", "VALUE", "SOURCE")
	for _, c := range d.Configs {
		v := "-"
		switch {
		case c.Sensitive:
			v = "(sensitive)"
		case c.Value != nil && *c.Value != "":
			v = *c.Value
		case c.Value != nil:
			v = `""`
		}
		t.add(c.Name, v, c.Source)
	}
	t.write(w)
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

func topicAlterConfigCmd(conn *connFlags) *cobra.Command {
	var flagTopics, sets, deletes, appends, subtracts []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "alter-config TOPIC...",
		Short: "Set or reset topic configs",
		Long: `Change topic configs incrementally: --set gives a config a value on the
topic, --delete removes the topic's own value so the cluster default
applies again, --append and --subtract edit list configs such as
cleanup.policy. Several pairs can share one flag, separated by commas,
as kafka-configs.sh --add-config takes them (--add-config and
--delete-config are accepted too).`,
		Example: `  strom topic alter-config orders --set retention.ms=86400000
  strom topic alter-config orders --set retention.ms=3600000,segment.bytes=104857600
  strom topic alter-config orders --delete retention.ms
  strom topic alter-config orders --append cleanup.policy=compact --dry-run`,
		RunE: func(cmd *cobra.Command, args []string) error {
			topics, err := names(args, flagTopics, "topic", `"strom topic alter-config orders --set retention.ms=86400000"`)
			if err != nil {
				return err
			}
			var alters []kadm.AlterConfig
			var said []string
			for _, op := range []struct {
				flag string
				vals []string
				op   kadm.IncrementalOp
				verb string
			}{{"--set", sets, kadm.SetConfig, "set"}, {"--append", appends, kadm.AppendConfig, "appended"}, {"--subtract", subtracts, kadm.SubtractConfig, "subtracted"}} {
				pairs, err := parseConfigs(op.flag, op.vals)
				if err != nil {
					return err
				}
				for _, kv := range pairs {
					alters = append(alters, kadm.AlterConfig{Op: op.op, Name: kv[0], Value: kadm.StringPtr(kv[1])})
					said = append(said, fmt.Sprintf("%s %s=%s", op.verb, kv[0], kv[1]))
				}
			}
			for _, d := range deletes {
				for _, name := range strings.Split(d, ",") {
					if name = strings.TrimSpace(name); name != "" {
						alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name})
						said = append(said, "deleted "+name)
					}
				}
			}
			if len(alters) == 0 {
				return usageErr("nothing to change: give --set name=value, --delete name, --append or --subtract")
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			alter, verb := adm.AlterTopicConfigs, "altered"
			if dryRun {
				alter, verb = adm.ValidateAlterTopicConfigs, "would alter"
			}
			resps, err := alter(ctx, alters, topics...)
			if err != nil {
				return conn.explain(err)
			}
			out, fails := cmd.OutOrStdout(), &failures{w: cmd.ErrOrStderr()}
			for _, t := range topics {
				r, err := resps.On(t, nil)
				if err == nil {
					err = r.Err
				}
				if err != nil {
					fails.add(explain(err, errContext{topic: t, msg: r.ErrMessage}))
					continue
				}
				fmt.Fprintf(out, "%s topic %s: %s\n", verb, t, strings.Join(said, ", "))
			}
			return fails.err()
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&flagTopics, "topic", "t", nil, "topic to alter (repeatable; same as the arguments)")
	f.StringArrayVar(&sets, "set", nil, "name=value to set on the topic (repeatable; also --add-config)")
	f.StringArrayVar(&deletes, "delete", nil, "config name to reset to the cluster default (repeatable; also --delete-config)")
	f.StringArrayVar(&appends, "append", nil, "name=value to add to a list config (repeatable)")
	f.StringArrayVar(&subtracts, "subtract", nil, "name=value to remove from a list config (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "only validate the change; alter nothing")
	return cmd
}
