package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newGroupCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups"},
		Short:   "List, describe, reset and delete consumer groups",
		Long: `Manage consumer groups on any Kafka-compatible cluster, as
kafka-consumer-groups.sh does (its --group, --topic, --all-topics,
--to-earliest, ..., --execute spellings work too).`,
		Example: `  strom group list
  strom group describe billing
  strom group reset-offsets billing --topic orders --to-earliest --execute
  strom group delete billing`,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(groupListCmd(conn), groupDescribeCmd(conn), groupResetCmd(conn), groupDeleteCmd(conn))
	return kafkaCommand(cmd)
}

const groupsHint = "group commands need a broker that implements consumer groups"

type groupListEntry struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func groupListCmd(conn *connFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Long: `List the cluster's groups, sorted by name, with their state (Stable,
Empty, PreparingRebalance, ...) and protocol type ("consumer" for
consumers, "connect" for Kafka Connect, ...).

JSON: [{"group","state","protocol_type","coordinator"}].`,
		Example: `  strom group list
  strom group list --output json | jq -r '.[] | select(.state == "Empty") | .group'`,
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
			if err := requireAPIs(ctx, adm, conn, "consumer groups", groupsHint, 16); err != nil {
				return err
			}
			groups, err := adm.ListGroups(ctx)
			if err != nil {
				return conn.explain(err)
			}
			entries := []groupListEntry{}
			for _, g := range groups.Sorted() {
				entries = append(entries, groupListEntry{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator})
			}
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), entries)
			}
			t := newTable("GROUP", "STATE", "PROTOCOL-TYPE")
			for _, e := range entries {
				t.add(e.Group, e.State, e.ProtocolType)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

type groupDescription struct {
	Group        string           `json:"group"`
	State        string           `json:"state"`
	ProtocolType string           `json:"protocol_type"`
	Protocol     string           `json:"protocol"`
	Coordinator  int32            `json:"coordinator"`
	Members      []groupMember    `json:"members"`
	Partitions   []groupPartition `json:"partitions"`
	TotalLag     int64            `json:"total_lag"`
}

type groupMember struct {
	MemberID   string  `json:"member_id"`
	InstanceID *string `json:"instance_id"`
	ClientID   string  `json:"client_id"`
	Host       string  `json:"host"`
}

type groupPartition struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset int64  `json:"current_offset"` // -1: nothing committed
	LogEndOffset  int64  `json:"log_end_offset"`
	Lag           int64  `json:"lag"` // -1: unknown
	ConsumerID    string `json:"consumer_id"`
	Host          string `json:"host"`
	ClientID      string `json:"client_id"`
}

func groupDescribeCmd(conn *connFlags) *cobra.Command {
	var flagGroups []string
	var output string
	cmd := &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's members, committed offsets and lag",
		Long: `For every partition the group has committed to or is assigned: the
committed (current) offset, the log end offset, the lag between them and
the member consuming it; then the group's total lag.

JSON: [{"group","state","protocol_type","protocol","coordinator",
  "members":[{"member_id","instance_id","client_id","host"}],
  "partitions":[{"topic","partition","current_offset","log_end_offset",
                 "lag","consumer_id","host","client_id"}],
  "total_lag"}]
A current_offset of -1 means nothing is committed.`,
		Example: `  strom group describe billing
  strom group describe --group billing --bootstrap-server localhost:9092
  strom group describe billing --output json | jq .[0].total_lag`,
		RunE: func(cmd *cobra.Command, args []string) error {
			groups, err := names(args, flagGroups, "group", `"strom group describe billing"`)
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
			if err := requireAPIs(ctx, adm, conn, "consumer groups", groupsHint, 15, 9); err != nil {
				return err
			}
			lags, err := adm.Lag(ctx, groups...)
			if err != nil {
				return explain(err, conn.with(errContext{group: groups[0]}))
			}
			var descs []groupDescription
			for _, g := range groups {
				l, ok := lags[g]
				if !ok {
					return &problem{msg: fmt.Sprintf("group %q: no answer from the cluster", g)}
				}
				if err := l.Error(); err != nil {
					return explain(err, conn.with(errContext{group: g}))
				}
				if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
					return explain(kerr.GroupIDNotFound, errContext{group: g})
				}
				descs = append(descs, describeGroup(l))
			}
			return writeDescriptions(cmd.OutOrStdout(), output, descs, printGroupDescription)
		},
	}
	cmd.Flags().StringArrayVarP(&flagGroups, "group", "g", nil, "group to describe (repeatable; same as the arguments)")
	addOutputFlag(cmd, &output)
	return cmd
}

func describeGroup(l kadm.DescribedGroupLag) groupDescription {
	d := groupDescription{
		Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, Members: []groupMember{}, Partitions: []groupPartition{},
	}
	for _, m := range l.Members {
		d.Members = append(d.Members, groupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost})
	}
	for _, ml := range l.Lag.Sorted() {
		p := groupPartition{
			Topic: ml.Topic, Partition: ml.Partition,
			CurrentOffset: ml.Commit.At, LogEndOffset: ml.End.Offset, Lag: ml.Lag,
		}
		if ml.End.Err != nil {
			p.LogEndOffset = -1
		}
		if ml.Member != nil {
			p.ConsumerID, p.Host, p.ClientID = ml.Member.MemberID, ml.Member.ClientHost, ml.Member.ClientID
		}
		if p.Lag > 0 {
			d.TotalLag += p.Lag
		}
		d.Partitions = append(d.Partitions, p)
	}
	return d
}

func printGroupDescription(w io.Writer, d groupDescription) {
	t := newTable("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
	for _, p := range d.Partitions {
		t.add(d.Group, p.Topic, p.Partition, offsetCell(p.CurrentOffset), offsetCell(p.LogEndOffset), offsetCell(p.Lag), p.ConsumerID, p.Host, p.ClientID)
	}
	t.write(w)
	fmt.Fprintf(w, "\nTotal lag: %d  State: %s  Members: %d\n", d.TotalLag, d.State, len(d.Members))
}

func groupDeleteCmd(conn *connFlags) *cobra.Command {
	var flagGroups []string
	cmd := &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets",
		Long:    "Delete groups that have no active members, with all their committed offsets.",
		Example: `  strom group delete billing
  strom group delete --group old-a --group old-b`,
		RunE: func(cmd *cobra.Command, args []string) error {
			groups, err := names(args, flagGroups, "group", `"strom group delete billing"`)
			if err != nil {
				return err
			}
			ctx, adm, done, err := conn.adminFor(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := requireAPIs(ctx, adm, conn, "consumer groups", groupsHint, 42); err != nil {
				return err
			}
			resps, err := adm.DeleteGroups(ctx, groups...)
			if err != nil {
				return explain(err, conn.with(errContext{group: groups[0]}))
			}
			out, fails := cmd.OutOrStdout(), &failures{w: cmd.ErrOrStderr()}
			for _, g := range groups {
				r, ok := resps[g]
				switch {
				case !ok:
					fails.add(&problem{msg: fmt.Sprintf("group %q: no answer from the cluster", g)})
				case r.Err != nil:
					fails.add(explain(r.Err, errContext{group: g, msg: r.ErrMessage}))
				default:
					fmt.Fprintf(out, "deleted group %s\n", g)
				}
			}
			return fails.err()
		},
	}
	cmd.Flags().StringArrayVarP(&flagGroups, "group", "g", nil, "group to delete (repeatable; same as the arguments)")
	return cmd
}
