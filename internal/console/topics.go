package console

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicJSON struct {
	Name              string   `json:"name"`
	Internal          bool     `json:"internal"`
	Partitions        int      `json:"partitions"`
	ReplicationFactor int      `json:"replication_factor"`
	Records           int64    `json:"records"`
	SizeBytes         *int64   `json:"size_bytes"`
	RecordsPerSec     *float64 `json:"records_per_sec"`
}

type partitionJSON struct {
	Partition int32 `json:"partition"`
	// Leader is -1 when the partition has no leader (offline).
	Leader int32 `json:"leader"`
	// LeaderEpoch is bumped by every change of leader (-1 when the
	// broker does not say).
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// UnderReplicated: fewer replicas in sync than assigned.
	UnderReplicated bool `json:"under_replicated"`
	// OfflineReplicas are the replicas whose log failed (Metadata's
	// offline replicas): the partition takes no writes until that broker
	// restarts; Error then says KAFKA_STORAGE_ERROR.
	OfflineReplicas []int32 `json:"offline_replicas"`
	StartOffset     int64   `json:"start_offset"`
	EndOffset       int64   `json:"end_offset"`
	Records         int64   `json:"records"`
	SizeBytes       *int64  `json:"size_bytes"`
	Error           string  `json:"error,omitempty"`
}

type topicDetailJSON struct {
	topicJSON
	ID               string          `json:"id"`
	PartitionsDetail []partitionJSON `json:"partition_details"`
	// UnderReplicated and Offline count the partitions with fewer
	// replicas in sync than assigned, and those without a leader.
	UnderReplicated int `json:"under_replicated"`
	Offline         int `json:"offline"`
	// AuthorizedOperations are what the request's user may do with the
	// topic, as the broker answers (KIP-430): the front end hides what
	// the broker would refuse. Absent when the broker does not say.
	AuthorizedOperations []string `json:"authorized_operations,omitempty"`
}

// topicOffsets lists start and end offsets and, when the cluster answers
// DescribeLogDirs, partition sizes. Sizes are optional: nil when unknown.
func (c *Console) topicOffsets(ctx context.Context, names []string) (starts, ends kadm.ListedOffsets, sizes map[string]map[int32]int64, err error) {
	if len(names) == 0 {
		return nil, nil, nil, nil
	}
	// Shard errors leave the other partitions listed: a partition whose
	// log failed (KAFKA_STORAGE_ERROR in Metadata) must not blank the
	// page; it shows its error instead of offsets.
	var shardErrs *kadm.ShardErrors
	if starts, err = c.admin(ctx).ListStartOffsets(ctx, names...); err != nil && (!errors.As(err, &shardErrs) || starts == nil) {
		return nil, nil, nil, err
	}
	if ends, err = c.admin(ctx).ListEndOffsets(ctx, names...); err != nil && (!errors.As(err, &shardErrs) || ends == nil) {
		return nil, nil, nil, err
	}
	// A nil set describes every partition; a set of bare topic names would
	// ask for none of their partitions.
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	if dirs, derr := c.admin(ctx).DescribeAllLogDirs(ctx, nil); derr == nil {
		sizes = map[string]map[int32]int64{}
		dirs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if !want[p.Topic] {
					return
				}
				if sizes[p.Topic] == nil {
					sizes[p.Topic] = map[int32]int64{}
				}
				sizes[p.Topic][p.Partition] += p.Size
			})
		})
	}
	return starts, ends, sizes, nil
}

func (c *Console) listTopics(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	internal := r.URL.Query().Get("internal") == "true"
	tds, err := c.freshTopics(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range tds {
		if t.Err == nil && (internal || !t.IsInternal) {
			names = append(names, t.Topic)
		}
	}
	sort.Strings(names)
	starts, ends, sizes, err := c.topicOffsets(ctx, names)
	if err != nil {
		return err
	}
	out := make([]topicJSON, 0, len(names))
	for _, n := range names {
		td := tds[n]
		tj := topicJSON{Name: n, Internal: td.IsInternal, Partitions: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas()}
		for p := range td.Partitions {
			tj.Records += recordsIn(starts, ends, n, p)
		}
		if sizes != nil {
			var sz int64
			for _, s := range sizes[n] {
				sz += s
			}
			tj.SizeBytes = &sz
		}
		tj.RecordsPerSec = c.stats.topicRate(n)
		out = append(out, tj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"topics": out})
	return nil
}

func recordsIn(starts, ends kadm.ListedOffsets, topic string, p int32) int64 {
	s, ok1 := starts.Lookup(topic, p)
	e, ok2 := ends.Lookup(topic, p)
	if !ok1 || !ok2 || s.Err != nil || e.Err != nil || e.Offset < s.Offset {
		return 0
	}
	return e.Offset - s.Offset
}

// freshTopics asks a broker for the metadata of topics (all when none
// given), bypassing kgo's metadata cache, so that a topic created or
// deleted a moment ago shows as it is now.
func (c *Console) freshTopics(ctx context.Context, topics ...string) (kadm.TopicDetails, error) {
	req := kmsg.NewPtrMetadataRequest()
	// What the user may do, for a topic's own page only: the broker
	// checks every operation for every topic it lists.
	req.IncludeTopicAuthorizedOperations = len(topics) == 1
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, c.client(ctx))
	if err != nil {
		return nil, err
	}
	out := make(kadm.TopicDetails, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		td := kadm.TopicDetail{Topic: *t.Topic, ID: kadm.TopicID(t.TopicID), IsInternal: t.IsInternal, Partitions: kadm.PartitionDetails{}, Err: kerr.ErrorForCode(t.ErrorCode)}
		if t.AuthorizedOperations != math.MinInt32 { // not told
			td.AuthorizedOperations = kadm.DecodeACLOperations(t.AuthorizedOperations)
		}
		for _, p := range t.Partitions {
			td.Partitions[p.Partition] = kadm.PartitionDetail{
				Topic: *t.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR, OfflineReplicas: p.OfflineReplicas, Err: kerr.ErrorForCode(p.ErrorCode),
			}
		}
		out[*t.Topic] = td
	}
	return out, nil
}

// topicDetail returns the metadata of one topic, or a 404 naming it.
func (c *Console) topicDetail(ctx context.Context, topic string) (kadm.TopicDetail, error) {
	tds, err := c.freshTopics(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, err
	}
	td, ok := tds[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return kadm.TopicDetail{}, notFound("unknown_topic", "topic %q does not exist", topic)
	}
	if td.Err != nil {
		return kadm.TopicDetail{}, td.Err
	}
	return td, nil
}

func (c *Console) getTopic(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	topic := r.PathValue("topic")
	td, err := c.topicDetail(ctx, topic)
	if err != nil {
		return err
	}
	starts, ends, sizes, err := c.topicOffsets(ctx, []string{topic})
	if err != nil {
		return err
	}
	out := topicDetailJSON{
		topicJSON: topicJSON{Name: topic, Internal: td.IsInternal, Partitions: len(td.Partitions), ReplicationFactor: td.Partitions.NumReplicas()},
		ID:        td.ID.String(),
	}
	var total int64
	for _, pd := range td.Partitions.Sorted() {
		pj := partitionJSON{Partition: pd.Partition, Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch, Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR),
			OfflineReplicas: nonNil(pd.OfflineReplicas), UnderReplicated: underReplicated(pd)}
		if pj.UnderReplicated {
			out.UnderReplicated++
		}
		if pd.Leader < 0 {
			out.Offline++
		}
		if pd.Err != nil {
			pj.Error = pd.Err.Error()
		}
		if s, ok := starts.Lookup(topic, pd.Partition); ok && s.Err == nil {
			pj.StartOffset = s.Offset
		}
		if e, ok := ends.Lookup(topic, pd.Partition); ok && e.Err == nil {
			pj.EndOffset = e.Offset
		}
		pj.Records = recordsIn(starts, ends, topic, pd.Partition)
		out.Records += pj.Records
		if sizes != nil {
			sz := sizes[topic][pd.Partition]
			pj.SizeBytes = &sz
			total += sz
		}
		out.PartitionsDetail = append(out.PartitionsDetail, pj)
	}
	if sizes != nil {
		out.SizeBytes = &total
	}
	out.RecordsPerSec = c.stats.topicRate(topic)
	for _, op := range td.AuthorizedOperations {
		out.AuthorizedOperations = append(out.AuthorizedOperations, op.String())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

type createTopicReq struct {
	Name              string            `json:"name"`
	Partitions        *int32            `json:"partitions"`
	ReplicationFactor *int16            `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
}

// validTopicName applies Kafka's rules, so that the reply names the
// problem rather than relaying INVALID_TOPIC_EXCEPTION.
func validTopicName(name string) error {
	switch {
	case name == "":
		return badRequest("invalid_topic", "topic name is empty")
	case name == "." || name == "..":
		return badRequest("invalid_topic", "topic name %q is not allowed", name)
	case len(name) > 249:
		return badRequest("invalid_topic", "topic name is %d characters long; the limit is 249", len(name))
	}
	for _, c := range name {
		if !(c == '.' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return badRequest("invalid_topic", "topic name %q: only letters, digits, '.', '_' and '-' are allowed", name)
		}
	}
	return nil
}

func (c *Console) createTopic(w http.ResponseWriter, r *http.Request) error {
	var req createTopicReq
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if err := validTopicName(req.Name); err != nil {
		return err
	}
	parts, rf := int32(-1), int16(-1)
	if req.Partitions != nil {
		if *req.Partitions < 1 || *req.Partitions > 10000 {
			return badRequest("invalid_partitions", "partitions: %d; want 1 to 10000 (or leave it out for the cluster's default)", *req.Partitions)
		}
		parts = *req.Partitions
	}
	if req.ReplicationFactor != nil {
		if *req.ReplicationFactor < 1 {
			return badRequest("invalid_replication_factor", "replication_factor: %d; want 1 or more (or leave it out for the cluster's default)", *req.ReplicationFactor)
		}
		rf = *req.ReplicationFactor
	}
	var configs map[string]*string
	if len(req.Configs) > 0 {
		configs = map[string]*string{}
		for k, v := range req.Configs {
			configs[k] = &v
		}
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	resp, err := c.admin(ctx).CreateTopic(ctx, parts, rf, configs, req.Name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return &apiError{Status: http.StatusConflict, Code: "topic_exists", Msg: "topic " + quote(req.Name) + " already exists"}
		}
		if resp.ErrMessage != "" {
			ae := httpError(err)
			ae.Msg += ": " + resp.ErrMessage
			return ae
		}
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"name": req.Name, "partitions": resp.NumPartitions, "replication_factor": resp.ReplicationFactor, "id": resp.ID.String(),
	})
	return nil
}

func quote(s string) string { return `"` + s + `"` }

func (c *Console) deleteTopic(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	topic := r.PathValue("topic")
	if _, err := c.topicDetail(ctx, topic); err != nil {
		return err
	}
	resp, err := c.admin(ctx).DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": topic})
	return nil
}

type configJSON struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
	Default   bool    `json:"default"`
}

func (c *Console) getTopicConfigs(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	topic := r.PathValue("topic")
	if _, err := c.topicDetail(ctx, topic); err != nil {
		return err
	}
	rcs, err := c.admin(ctx).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return err
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return err
	}
	out := make([]configJSON, 0, len(rc.Configs))
	for _, cf := range rc.Configs {
		src := strings.ToLower(strings.TrimSuffix(cf.Source.String(), "_CONFIG"))
		out = append(out, configJSON{
			Name: cf.Key, Value: cf.Value, Source: src, Sensitive: cf.Sensitive,
			// Not set on the topic: the broker's (static or dynamic) or Kafka's.
			Default: cf.Source != kmsg.ConfigSourceDynamicTopicConfig,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"topic": topic, "configs": out})
	return nil
}

type patchConfigsReq struct {
	Set    map[string]string `json:"set"`
	Delete []string          `json:"delete"`
}

func (c *Console) patchTopicConfigs(w http.ResponseWriter, r *http.Request) error {
	var req patchConfigsReq
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if len(req.Set) == 0 && len(req.Delete) == 0 {
		return badRequest("bad_json", `nothing to change: send {"set":{"name":"value"}} and/or {"delete":["name"]}`)
	}
	var alters []kadm.AlterConfig
	names := make([]string, 0, len(req.Set))
	for k := range req.Set {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := req.Set[k]
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range req.Delete {
		if _, dup := req.Set[k]; dup {
			return badRequest("bad_json", "config %q is both set and deleted", k)
		}
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	topic := r.PathValue("topic")
	if _, err := c.topicDetail(ctx, topic); err != nil {
		return err
	}
	resps, err := c.admin(ctx).AlterTopicConfigs(ctx, alters, topic)
	if err != nil {
		return err
	}
	for _, resp := range resps {
		if resp.Err != nil {
			ae := httpError(resp.Err)
			if resp.ErrMessage != "" {
				ae.Msg += ": " + resp.ErrMessage
			}
			return ae
		}
	}
	return c.getTopicConfigs(w, r)
}
