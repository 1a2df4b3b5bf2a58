package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

type resetFlags struct {
	groups     []string
	topics     []string
	allTopics  bool
	toEarliest bool
	toLatest   bool
	toOffset   int64
	toDatetime string
	shiftBy    int64
	execute    bool
	dryRun     bool
	output     string
}

type resetPlan struct {
	Group      string           `json:"group"`
	Executed   bool             `json:"executed"`
	Partitions []resetPartition `json:"partitions"`
}

type resetPartition struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset int64  `json:"current_offset"` // -1: nothing committed
	NewOffset     int64  `json:"new_offset"`
}

func groupResetCmd(conn *connFlags) *cobra.Command {
	rf := &resetFlags{}
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP",
		Short: "Move a group's committed offsets (a dry run unless --execute)",
		Long: `Compute new committed offsets for a group's partitions and, with
--execute, commit them. Without --execute nothing changes: the plan is
printed. The group must have no active members when executing.

Which partitions: --topic TOPIC (all its partitions) or --topic
TOPIC:0,1,2 (repeatable), or --all-topics (every topic the group has
committed offsets for).

Where to (one of):
  --to-earliest          the start of each partition
  --to-latest            the end of each partition (skip everything)
  --to-offset N          offset N, clamped to what the log holds
  --to-datetime T        the first record at or after T (milliseconds,
                         2024-05-01T12:00:00Z, 2024-05-01, or -1h ago)
  --shift-by N           the committed offset plus N (negative: back)

JSON: {"group","executed","partitions":[{"topic","partition",
       "current_offset","new_offset"}]}`,
		Example: `  strom group reset-offsets billing --topic orders --to-earliest
  strom group reset-offsets billing --topic orders --to-earliest --execute
  strom group reset-offsets billing --topic orders:0,1 --shift-by -100 --execute
  strom group reset-offsets --group billing --all-topics --to-datetime 2024-05-01T00:00:00Z --execute`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReset(cmd, args, conn, rf)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&rf.groups, "group", "g", nil, "the group (same as the argument)")
	f.StringArrayVarP(&rf.topics, "topic", "t", nil, "TOPIC or TOPIC:P,P,... to reset (repeatable)")
	f.BoolVar(&rf.allTopics, "all-topics", false, "reset every topic the group has committed offsets for")
	f.BoolVar(&rf.toEarliest, "to-earliest", false, "reset to the start of each partition")
	f.BoolVar(&rf.toLatest, "to-latest", false, "reset to the end of each partition")
	f.Int64Var(&rf.toOffset, "to-offset", 0, "reset to this offset")
	f.StringVar(&rf.toDatetime, "to-datetime", "", "reset to the first record at or after this time")
	f.Int64Var(&rf.shiftBy, "shift-by", 0, "move the committed offset by this many records")
	f.BoolVar(&rf.execute, "execute", false, "commit the new offsets (otherwise only print them)")
	f.BoolVar(&rf.dryRun, "dry-run", false, "only print the new offsets (the default)")
	addOutputFlag(cmd, &rf.output)
	return cmd
}

func runReset(cmd *cobra.Command, args []string, conn *connFlags, rf *resetFlags) error {
	groups, err := names(args, rf.groups, "group", `"strom group reset-offsets billing --topic orders --to-earliest"`)
	if err != nil {
		return err
	}
	if len(groups) > 1 {
		return usageErr("reset-offsets works on one group at a time; got %s", strings.Join(groups, ", "))
	}
	group := groups[0]
	if err := checkOutput(rf.output); err != nil {
		return err
	}
	if rf.execute && rf.dryRun {
		return usageErr("give --execute or --dry-run, not both")
	}
	changed := cmd.Flags().Changed
	var scenarios []string
	for _, s := range []string{"to-earliest", "to-latest", "to-offset", "to-datetime", "shift-by"} {
		if changed(s) {
			scenarios = append(scenarios, "--"+s)
		}
	}
	if len(scenarios) != 1 {
		return usageErr("give exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime T, --shift-by N")
	}
	if (len(rf.topics) > 0) == rf.allTopics {
		return usageErr("give either --topic TOPIC[:P,P...] or --all-topics")
	}
	var millis int64
	if rf.toDatetime != "" {
		t, err := parseTime("--to-datetime", rf.toDatetime)
		if err != nil {
			return err
		}
		millis = t.UnixMilli()
	}
	ctx, adm, done, err := conn.adminFor(cmd)
	if err != nil {
		return err
	}
	defer done()
	ec := conn.with(errContext{group: group})
	if err := requireAPIs(ctx, adm, conn, "consumer groups", groupsHint, 15, 9, 8); err != nil {
		return err
	}

	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return explain(err, ec)
	}
	d := described[group]
	if errors.Is(d.Err, kerr.GroupIDNotFound) {
		d.Err = nil // a new group: its offsets can be set before it consumes
	}
	if d.Err != nil {
		return explain(d.Err, errContext{group: group, msg: d.ErrMessage})
	}
	if rf.execute && d.State != "Empty" && d.State != "Dead" && d.State != "" {
		return &problem{
			msg:  fmt.Sprintf("group %q is active (state %s, %d members)", group, d.State, len(d.Members)),
			hint: "stop its consumers first; offsets can only be reset while the group is inactive",
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed = nil // a new group: nothing committed yet
	} else if err != nil {
		return explain(err, ec)
	}
	targets, err := resetTargets(ctx, adm, conn, rf, committed)
	if err != nil {
		return err
	}
	topics := make([]string, 0, len(targets))
	for t := range targets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return conn.explain(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return conn.explain(err)
	}
	var atMillis kadm.ListedOffsets
	if changed("to-datetime") {
		if atMillis, err = adm.ListOffsetsAfterMilli(ctx, millis, topics...); err != nil {
			return conn.explain(err)
		}
	}

	plan := resetPlan{Group: group, Executed: rf.execute, Partitions: []resetPartition{}}
	offsets := kadm.Offsets{}
	for _, t := range topics {
		for _, p := range targets[t] {
			s, _ := starts.Lookup(t, p)
			e, _ := ends.Lookup(t, p)
			if s.Err != nil || e.Err != nil {
				return explain(firstErr(s.Err, e.Err), conn.with(errContext{topic: t}))
			}
			cur := int64(-1)
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil {
				cur = c.At
			}
			var to int64
			switch {
			case rf.toEarliest:
				to = s.Offset
			case rf.toLatest:
				to = e.Offset
			case changed("to-offset"):
				to = rf.toOffset
			case changed("to-datetime"):
				to = e.Offset
				if o, ok := atMillis.Lookup(t, p); ok && o.Err == nil && o.Offset >= 0 {
					to = o.Offset
				}
			case changed("shift-by"):
				if cur < 0 {
					return &problem{msg: fmt.Sprintf("group %q has no committed offset for %s [%d] to shift", group, t, p), hint: "use --to-earliest, --to-latest or --to-offset for it"}
				}
				to = cur + rf.shiftBy
			}
			to = min(max(to, s.Offset), e.Offset)
			plan.Partitions = append(plan.Partitions, resetPartition{Topic: t, Partition: p, CurrentOffset: cur, NewOffset: to})
			offsets.Add(kadm.Offset{Topic: t, Partition: p, At: to, LeaderEpoch: -1})
		}
	}
	if rf.execute {
		resps, err := adm.CommitOffsets(ctx, group, offsets)
		if err != nil {
			return explain(err, ec)
		}
		var cerr error
		resps.EachError(func(o kadm.OffsetResponse) {
			if cerr == nil {
				cerr = explain(o.Err, conn.with(errContext{group: group, topic: o.Topic}))
			}
		})
		if cerr != nil {
			return cerr
		}
	}
	out := cmd.OutOrStdout()
	if rf.output == outJSON {
		return writeJSON(out, plan)
	}
	t := newTable("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")
	for _, p := range plan.Partitions {
		t.add(group, p.Topic, p.Partition, offsetCell(p.CurrentOffset), p.NewOffset)
	}
	t.write(out)
	if rf.execute {
		fmt.Fprintf(out, "\ncommitted new offsets for %d partitions of group %s\n", len(plan.Partitions), group)
	} else {
		fmt.Fprintf(out, "\ndry run: nothing changed; add --execute to commit these offsets\n")
	}
	return nil
}

// resetTargets lists the partitions to reset, by topic.
func resetTargets(ctx context.Context, adm *kadm.Client, conn *connFlags, rf *resetFlags, committed kadm.OffsetResponses) (map[string][]int32, error) {
	targets := map[string][]int32{}
	if rf.allTopics {
		for t, ps := range committed.Partitions() {
			for p := range ps {
				targets[t] = append(targets[t], p)
			}
		}
		if len(targets) == 0 {
			return nil, &problem{msg: "the group has no committed offsets", hint: "name the topics with --topic"}
		}
	} else {
		var topics []string
		picked := map[string][]int32{}
		for _, spec := range rf.topics {
			t, list, hasList := strings.Cut(spec, ":")
			topics = append(topics, t)
			if !hasList {
				continue
			}
			for _, s := range strings.Split(list, ",") {
				p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
				if err != nil || p < 0 {
					return nil, usageErr("--topic %q: want TOPIC or TOPIC:0,1,2", spec)
				}
				picked[t] = append(picked[t], int32(p))
			}
		}
		tds, err := existingTopics(ctx, adm, conn, topics)
		if err != nil {
			return nil, err
		}
		for _, t := range topics {
			if ps, ok := picked[t]; ok {
				for _, p := range ps {
					if _, ok := tds[t].Partitions[p]; !ok {
						return nil, &problem{msg: fmt.Sprintf("topic %q has no partition %d", t, p), hint: fmt.Sprintf("it has %d partitions", len(tds[t].Partitions))}
					}
				}
				targets[t] = append(targets[t], ps...)
			} else {
				targets[t] = sortedPartitions(tds[t])
			}
		}
	}
	for t, ps := range targets {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		targets[t] = slices.Compact(ps)
	}
	return targets, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
