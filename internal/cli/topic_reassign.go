package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// reassignmentFile is kafka-reassign-partitions.sh's
// --reassignment-json-file: {"version":1,"partitions":[{"topic","partition","replicas"}]}
// (log_dirs is accepted and ignored: a Strom broker has one log dir).
type reassignmentFile struct {
	Version    int `json:"version"`
	Partitions []struct {
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Replicas  []int32  `json:"replicas"`
		LogDirs   []string `json:"log_dirs,omitempty"`
	} `json:"partitions"`
}

func readReassignment(path string) (reassignmentFile, error) {
	var f reassignmentFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, usageErr("read the reassignment file: %v", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, usageErr("%s: not a reassignment JSON ({\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[1,2,3]}]}): %v", path, err)
	}
	if f.Version != 1 {
		return f, usageErr("%s: version %d; only version 1 exists", path, f.Version)
	}
	if len(f.Partitions) == 0 {
		return f, usageErr("%s: no partitions", path)
	}
	return f, nil
}

// topicReassignCmd is `strom topic reassign`: kafka-reassign-partitions.sh's
// --execute, --verify, --list and --cancel over AlterPartitionReassignments
// and ListPartitionReassignments.
func topicReassignCmd(conn *connFlags) *cobra.Command {
	var file string
	var verify, list, cancel bool
	var output string
	cmd := &cobra.Command{
		Use:   "reassign [--reassignment-json-file] FILE | --verify FILE | --cancel FILE | --list",
		Short: "Move partitions' replicas to other brokers, or raise their replication factor",
		Long: `Reassign partitions' replicas as kafka-reassign-partitions.sh does, from the
same JSON file:

  {"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3,4]}]}

The first replica is the preferred leader. More replicas than the partition
has raises its replication factor; the new brokers copy the partition's log
from its leader before they count for acks=all. The command returns once the
cluster recorded the targets; --verify (or --list) shows whether the data
moved. --cancel returns the listed partitions to the replicas they had.

On Strom a partition of one replica cannot be reassigned (it is not a raft
group), and a target needs two replicas or more.`,
		Example: `  strom topic reassign move.json
  strom topic reassign --verify move.json
  strom topic reassign --list
  strom topic reassign --cancel move.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 1 && file != "") {
				return usageErr("give one reassignment file, as an argument or with --reassignment-json-file")
			}
			if len(args) == 1 {
				file = args[0]
			}
			if n := btoi(verify) + btoi(list) + btoi(cancel); n > 1 {
				return usageErr("give at most one of --verify, --list and --cancel")
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			if list != (file == "") {
				if list {
					return usageErr("--list takes no file")
				}
				return usageErr(`give a reassignment file ("strom topic reassign move.json") or --list`)
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			out, fails := cmd.OutOrStdout(), &failures{w: cmd.ErrOrStderr()}
			if list {
				resps, err := adm.ListPartitionReassignments(ctx, nil)
				if err != nil {
					return conn.explain(err)
				}
				return printReassignments(out, output, resps)
			}
			f, err := readReassignment(file)
			if err != nil {
				return err
			}
			if verify {
				return verifyReassignment(cmd, conn, adm, f, output)
			}
			var req kadm.AlterPartitionAssignmentsReq
			for _, p := range f.Partitions {
				if cancel {
					req.CancelAssign(p.Topic, p.Partition)
				} else {
					req.Assign(p.Topic, p.Partition, p.Replicas)
				}
			}
			resps, err := adm.AlterPartitionAssignments(ctx, req)
			if err != nil {
				return conn.explain(err)
			}
			for _, p := range f.Partitions {
				r, ok := resps[p.Topic][p.Partition]
				switch {
				case !ok:
					fails.add(&problem{msg: fmt.Sprintf("%s-%d: no answer from the cluster", p.Topic, p.Partition)})
				case r.Err != nil:
					fails.add(explain(r.Err, errContext{topic: p.Topic, msg: r.ErrMessage}))
				case cancel:
					fmt.Fprintf(out, "cancelled the reassignment of %s-%d\n", p.Topic, p.Partition)
				default:
					fmt.Fprintf(out, "reassigning %s-%d to %s\n", p.Topic, p.Partition, int32List(p.Replicas))
				}
			}
			return fails.err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "reassignment-json-file", "", "the reassignment JSON (kafka-reassign-partitions.sh's format)")
	f.BoolVar(&verify, "verify", false, "show whether the file's reassignments are done")
	f.BoolVar(&list, "list", false, "list the reassignments in progress")
	f.BoolVar(&cancel, "cancel", false, "cancel the file's reassignments")
	f.Bool("execute", false, "start the file's reassignments (the default)")
	addOutputFlag(cmd, &output)
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type reassignRow struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding_replicas"`
	Removing  []int32 `json:"removing_replicas"`
	State     string  `json:"state,omitempty"`
}

func printReassignments(out interface{ Write([]byte) (int, error) }, output string, resps kadm.ListPartitionReassignmentsResponses) error {
	var rows []reassignRow
	for _, ps := range resps {
		for _, r := range ps {
			rows = append(rows, reassignRow{Topic: r.Topic, Partition: r.Partition, Replicas: r.Replicas, Adding: r.AddingReplicas, Removing: r.RemovingReplicas})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Topic != rows[j].Topic {
			return rows[i].Topic < rows[j].Topic
		}
		return rows[i].Partition < rows[j].Partition
	})
	if output == "json" {
		return writeJSON(out, rows)
	}
	if len(rows) == 0 {
		_, err := fmt.Fprintln(out, "no reassignment in progress")
		return err
	}
	t := newTable("TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING")
	for _, r := range rows {
		t.add(r.Topic, r.Partition, int32List(r.Replicas), int32List(r.Adding), int32List(r.Removing))
	}
	return t.write(out)
}

// verifyReassignment says of each partition of the file whether its
// reassignment is in progress, done (the replicas are the target) or
// neither.
func verifyReassignment(cmd *cobra.Command, conn *connFlags, adm *kadm.Client, f reassignmentFile, output string) error {
	ctx := cmd.Context()
	topics := kadm.TopicsSet{}
	var names []string
	for _, p := range f.Partitions {
		topics.Add(p.Topic, p.Partition)
		names = append(names, p.Topic)
	}
	moving, err := adm.ListPartitionReassignments(ctx, topics)
	if err != nil {
		return conn.explain(err)
	}
	tds, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return conn.explain(err)
	}
	out, fails := cmd.OutOrStdout(), &failures{w: cmd.ErrOrStderr()}
	var rows []reassignRow
	for _, p := range f.Partitions {
		row := reassignRow{Topic: p.Topic, Partition: p.Partition}
		td, ok := tds[p.Topic]
		if !ok || td.Err != nil {
			err := errors.New("no answer")
			if ok {
				err = td.Err
			}
			fails.add(explain(err, errContext{topic: p.Topic}))
			continue
		}
		pd, ok := td.Partitions[p.Partition]
		if !ok {
			fails.add(explain(kerr.UnknownTopicOrPartition, errContext{topic: p.Topic}))
			continue
		}
		row.Replicas = pd.Replicas
		if m, ok := moving[p.Topic][p.Partition]; ok {
			row.State, row.Replicas, row.Adding, row.Removing = "in progress", m.Replicas, m.AddingReplicas, m.RemovingReplicas
		} else if slices.Equal(pd.Replicas, p.Replicas) {
			row.State = "complete"
		} else {
			row.State = "not started (replicas differ and none is in progress)"
		}
		rows = append(rows, row)
	}
	if output == "json" {
		if err := writeJSON(out, rows); err != nil {
			return err
		}
		return fails.err()
	}
	for _, r := range rows {
		switch r.State {
		case "in progress":
			fmt.Fprintf(out, "Reassignment of partition %s-%d is still in progress (replicas %s, adding %s, removing %s).\n",
				r.Topic, r.Partition, int32List(r.Replicas), int32List(r.Adding), int32List(r.Removing))
		case "complete":
			fmt.Fprintf(out, "Reassignment of partition %s-%d is completed.\n", r.Topic, r.Partition)
		default:
			fmt.Fprintf(out, "There is no active reassignment of partition %s-%d, but replicas are %s.\n", r.Topic, r.Partition, int32List(r.Replicas))
		}
	}
	return fails.err()
}
