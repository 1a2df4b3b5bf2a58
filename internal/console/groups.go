package console

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

type groupSummaryJSON struct {
	Group        string   `json:"group"`
	State        string   `json:"state"`
	ProtocolType string   `json:"protocol_type"`
	Protocol     string   `json:"protocol"`
	Coordinator  int32    `json:"coordinator"`
	Members      int      `json:"members"`
	Topics       []string `json:"topics"`
	// Lag is the total lag, null when it could not be computed.
	Lag   *int64 `json:"lag"`
	Error string `json:"error,omitempty"`
}

type memberJSON struct {
	MemberID    string           `json:"member_id"`
	InstanceID  *string          `json:"instance_id"`
	ClientID    string           `json:"client_id"`
	ClientHost  string           `json:"client_host"`
	Assignments []assignmentJSON `json:"assignments"`
}

type assignmentJSON struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type partitionLagJSON struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Committed   int64  `json:"committed"` // -1: no commit
	StartOffset int64  `json:"start_offset"`
	EndOffset   int64  `json:"end_offset"`
	Lag         int64  `json:"lag"` // -1: unknown (see error)
	MemberID    string `json:"member_id,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	Error       string `json:"error,omitempty"`
}

type groupJSON struct {
	groupSummaryJSON
	MemberList []memberJSON       `json:"member_list"`
	Partitions []partitionLagJSON `json:"partitions"`
}

func summaryOf(l kadm.DescribedGroupLag) groupSummaryJSON {
	g := groupSummaryJSON{
		Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, Members: len(l.Members), Topics: []string{},
	}
	for t := range l.Lag {
		g.Topics = append(g.Topics, t)
	}
	sort.Strings(g.Topics)
	if err := l.Error(); err != nil {
		g.Error = err.Error()
	} else {
		tot := l.Lag.Total()
		g.Lag = &tot
	}
	return g
}

func (c *Console) listGroups(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	if err := c.requireGroups(ctx); err != nil {
		return err
	}
	listed, err := c.admin(ctx).ListGroups(ctx)
	if err != nil {
		return err
	}
	out := []groupSummaryJSON{}
	if len(listed) > 0 {
		lags, err := c.admin(ctx).Lag(ctx, listed.Groups()...)
		if err != nil {
			return err
		}
		for _, l := range lags.Sorted() {
			out = append(out, summaryOf(l))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
	return nil
}

// groupLag describes one group with its lag, or a 404 when the cluster
// does not know it.
func (c *Console) groupLag(ctx context.Context, group string) (kadm.DescribedGroupLag, error) {
	if err := c.requireGroups(ctx); err != nil {
		return kadm.DescribedGroupLag{}, err
	}
	lags, err := c.admin(ctx).Lag(ctx, group)
	if err != nil {
		return kadm.DescribedGroupLag{}, err
	}
	l, ok := lags[group]
	if !ok || errors.Is(l.DescribeErr, kerr.GroupIDNotFound) || l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
		return kadm.DescribedGroupLag{}, notFound("unknown_group", "consumer group %q does not exist", group)
	}
	if l.DescribeErr != nil {
		return kadm.DescribedGroupLag{}, l.DescribeErr
	}
	return l, nil
}

func (c *Console) getGroup(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	l, err := c.groupLag(ctx, r.PathValue("group"))
	if err != nil {
		return err
	}
	out := groupJSON{groupSummaryJSON: summaryOf(l), MemberList: []memberJSON{}, Partitions: []partitionLagJSON{}}
	for _, m := range l.Members {
		mj := memberJSON{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assignments: []assignmentJSON{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				mj.Assignments = append(mj.Assignments, assignmentJSON{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		out.MemberList = append(out.MemberList, mj)
	}
	for _, pl := range l.Lag.Sorted() {
		pj := partitionLagJSON{
			Topic: pl.Topic, Partition: pl.Partition, Committed: pl.Commit.At,
			StartOffset: pl.Start.Offset, EndOffset: pl.End.Offset, Lag: pl.Lag,
		}
		if pl.Member != nil {
			pj.MemberID, pj.ClientID = pl.Member.MemberID, pl.Member.ClientID
		}
		if pl.Err != nil {
			pj.Error = pl.Err.Error()
		}
		out.Partitions = append(out.Partitions, pj)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type resetReq struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
	To         string  `json:"to"`
	DryRun     bool    `json:"dry_run"`
}

type resetOffsetJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Previous  int64  `json:"previous"` // -1: no commit before
	Offset    int64  `json:"offset"`
	Error     string `json:"error,omitempty"`
}

// resetGroup commits new offsets for an empty group, as
// kafka-consumer-groups.sh --reset-offsets does.
func (c *Console) resetGroup(w http.ResponseWriter, r *http.Request) error {
	var req resetReq
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.To == "" {
		return badRequest("bad_position", `to is missing: want "earliest", "latest", an offset or "@<unix ms>"`)
	}
	to, err := parsePosition("to", req.To)
	if err != nil {
		return err
	}
	group := r.PathValue("group")
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	if err := c.requireGroups(ctx); err != nil {
		return err
	}
	described, err := c.admin(ctx).DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	if d, ok := described[group]; ok && len(d.Members) > 0 {
		return &apiError{Status: http.StatusConflict, Code: "group_not_empty",
			Msg: "consumer group " + quote(group) + " has " + strconv.Itoa(len(d.Members)) + " active members; stop its consumers before resetting its offsets"}
	}
	committed, err := c.admin(ctx).FetchOffsets(ctx, group)
	if err != nil {
		return err
	}
	// Which topics and partitions: as asked, else all the group committed.
	targets := map[string][]int32{}
	if req.Topic != "" {
		td, err := c.topicDetail(ctx, req.Topic)
		if err != nil {
			return err
		}
		parts := req.Partitions
		if len(parts) == 0 {
			parts = td.Partitions.Numbers()
		}
		for _, p := range parts {
			if _, ok := td.Partitions[p]; !ok {
				return badRequest("bad_partition", "partition %d does not exist: topic %q has %d partitions", p, req.Topic, len(td.Partitions))
			}
		}
		targets[req.Topic] = parts
	} else {
		if len(req.Partitions) > 0 {
			return badRequest("bad_partition", "partitions need a topic")
		}
		committed.Each(func(o kadm.OffsetResponse) {
			targets[o.Topic] = append(targets[o.Topic], o.Partition)
		})
		if len(targets) == 0 {
			return badRequest("bad_topic", "consumer group %q has no committed offsets: name the topic to reset", group)
		}
	}
	var out []resetOffsetJSON
	offsets := kadm.Offsets{}
	for topic, parts := range targets {
		ranges, err := c.partitionRanges(ctx, topic, parts)
		if err != nil {
			return err
		}
		var listed kadm.ListedOffsets
		if to.kind == posTime {
			if listed, err = c.admin(ctx).ListOffsetsAfterMilli(ctx, to.millis, topic); err != nil {
				return err
			}
		}
		for _, p := range parts {
			rg := ranges[p]
			var at int64
			switch to.kind {
			case posEarliest:
				at = rg.start
			case posLatest:
				at = rg.end
			case posOffset:
				if to.offset < rg.start || to.offset > rg.end {
					return outOfRange(topic, p, to.offset, rg)
				}
				at = to.offset
			case posTime:
				at = rg.end
				if lo, ok := listed.Lookup(topic, p); ok && lo.Err == nil && lo.Offset >= 0 {
					at = lo.Offset
				}
			}
			prev := int64(-1)
			if o, ok := committed.Lookup(topic, p); ok && o.Err == nil {
				prev = o.At
			}
			offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
			out = append(out, resetOffsetJSON{Topic: topic, Partition: p, Previous: prev, Offset: at})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	if !req.DryRun {
		resps, err := c.admin(ctx).CommitOffsets(ctx, group, offsets)
		if err != nil {
			return err
		}
		if err := resps.Error(); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": group, "dry_run": req.DryRun, "offsets": out})
	return nil
}
