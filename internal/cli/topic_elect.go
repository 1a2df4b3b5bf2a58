package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topicElectLeadersCmd is `strom topic elect-leaders`:
// kafka-leader-election.sh over ElectLeaders.
func topicElectLeadersCmd(conn *connFlags) *cobra.Command {
	var topic, electionType, jsonFile string
	var partition int32
	var all bool
	cmd := &cobra.Command{
		Use:   "elect-leaders (--topic TOPIC [--partition N] | --path-to-json-file FILE | --all-topic-partitions)",
		Short: "Move partitions' leadership back to their preferred replica",
		Long: `Elect leaders as kafka-leader-election.sh does. PREFERRED (the default) makes
each partition's preferred replica (its first) the leader when it is alive
and in sync; partitions it leads already need no election.

UNCLEAN is refused by Strom for a partition without a leader (raft elects
only a replica holding every committed record, as soon as a majority of its
replicas is up) and needs no election for one with a leader.`,
		Example: `  strom topic elect-leaders --topic orders
  strom topic elect-leaders --topic orders --partition 0
  strom topic elect-leaders --path-to-json-file partitions.json
  strom topic elect-leaders --all-topic-partitions`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && topic == "" {
				topic = args[0]
			} else if len(args) > 0 {
				return usageErr("give the topic once, as an argument or with --topic")
			}
			if btoi(all)+btoi(topic != "")+btoi(jsonFile != "") != 1 {
				return usageErr("give --topic TOPIC (with --partition N for one partition), --path-to-json-file FILE or --all-topic-partitions")
			}
			how := kadm.ElectPreferredReplica
			switch strings.ToUpper(electionType) {
			case "PREFERRED":
			case "UNCLEAN":
				how = kadm.ElectLiveReplica
			default:
				return usageErr("--election-type %q: PREFERRED or UNCLEAN", electionType)
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			var set kadm.TopicsSet
			if jsonFile != "" {
				if set, err = readElectionFile(jsonFile); err != nil {
					return err
				}
			} else if !all {
				set = kadm.TopicsSet{}
				if cmd.Flags().Changed("partition") {
					set.Add(topic, partition)
				} else {
					tds, err := adm.ListTopics(ctx, topic)
					if err != nil {
						return conn.explain(err)
					}
					td := tds[topic]
					if td.Err != nil {
						return explain(td.Err, errContext{topic: topic})
					}
					for p := range td.Partitions {
						set.Add(topic, p)
					}
				}
			}
			res, err := adm.ElectLeaders(ctx, how, set)
			if err != nil {
				return conn.explain(err)
			}
			var elected, notNeeded []string
			type failed struct {
				tp  string
				err error
			}
			var fails []failed
			for _, ps := range res {
				for _, r := range ps {
					tp := fmt.Sprintf("%s-%d", r.Topic, r.Partition)
					switch {
					case r.Err == nil:
						elected = append(elected, tp)
					case errors.Is(r.Err, kerr.ElectionNotNeeded):
						notNeeded = append(notNeeded, tp)
					default:
						e := r.Err
						if r.ErrMessage != "" {
							e = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
						}
						fails = append(fails, failed{tp, e})
					}
				}
			}
			sort.Strings(elected)
			sort.Strings(notNeeded)
			sort.Slice(fails, func(i, j int) bool { return fails[i].tp < fails[j].tp })
			out := cmd.OutOrStdout()
			kind := strings.ToUpper(electionType)
			if len(elected) > 0 {
				fmt.Fprintf(out, "Successfully completed leader election (%s) for partitions %s\n", kind, strings.Join(elected, ", "))
			}
			if len(notNeeded) > 0 {
				fmt.Fprintf(out, "Valid replica already elected for partitions %s\n", strings.Join(notNeeded, ", "))
			}
			if len(elected)+len(notNeeded)+len(fails) == 0 {
				fmt.Fprintln(out, "No partition needed an election")
			}
			if len(fails) == 0 {
				return nil
			}
			f := &failures{w: cmd.ErrOrStderr()}
			for _, x := range fails {
				f.add(&problem{msg: fmt.Sprintf("leader election (%s) for %s failed: %v", kind, x.tp, x.err), err: x.err})
			}
			return f.err()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&topic, "topic", "t", "", "the topic whose partitions to elect leaders of")
	f.Int32Var(&partition, "partition", 0, "one partition of --topic (default: all of its partitions)")
	f.BoolVar(&all, "all-topic-partitions", false, "every partition of every topic")
	f.StringVar(&electionType, "election-type", "PREFERRED", "PREFERRED or UNCLEAN")
	f.StringVar(&jsonFile, "path-to-json-file", "", `the partitions, as kafka-leader-election.sh takes them: {"partitions":[{"topic":"t","partition":0}]}`)
	return cmd
}

// readElectionFile reads kafka-leader-election.sh's --path-to-json-file.
func readElectionFile(path string) (kadm.TopicsSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr("read the partitions file: %v", err)
	}
	var f struct {
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition *int32 `json:"partition"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, usageErr(`%s: not a partitions JSON ({"partitions":[{"topic":"t","partition":0}]}): %v`, path, err)
	}
	set := kadm.TopicsSet{}
	for _, p := range f.Partitions {
		if p.Topic == "" || p.Partition == nil {
			return nil, usageErr("%s: every entry needs a topic and a partition", path)
		}
		set.Add(p.Topic, *p.Partition)
	}
	if len(set) == 0 {
		return nil, usageErr("%s: no partitions", path)
	}
	return set, nil
}
