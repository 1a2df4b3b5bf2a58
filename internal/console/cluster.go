package console

import (
	"errors"
	"net/http"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

type brokerJSON struct {
	ID   int32   `json:"id"`
	Host string  `json:"host"`
	Port int32   `json:"port"`
	Rack *string `json:"rack"`
}

type clusterJSON struct {
	ClusterID  string       `json:"cluster_id"`
	Controller int32        `json:"controller"`
	Brokers    []brokerJSON `json:"brokers"`
	Topics     int          `json:"topics"`
	Partitions int          `json:"partitions"`
	// Records is the sum over user topics of end minus start offsets.
	Records int64 `json:"records"`
	// RecordsPerSec is the latest rate from the in-process history; null
	// before two samples exist.
	RecordsPerSec *float64 `json:"records_per_sec"`
	// GroupsSupported says whether the cluster has the consumer group
	// APIs, so that a front end need not call them to find out.
	GroupsSupported bool `json:"groups_supported"`
}

func (c *Console) getCluster(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	md, err := c.admin(ctx).BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	tds, err := c.freshTopics(ctx)
	if err != nil {
		return err
	}
	out := clusterJSON{ClusterID: md.Cluster, Controller: md.Controller, Brokers: brokersOf(md.Brokers)}
	var names []string
	for _, t := range tds {
		if t.IsInternal || t.Err != nil {
			continue
		}
		out.Topics++
		out.Partitions += len(t.Partitions)
		names = append(names, t.Topic)
	}
	if len(names) > 0 {
		// A partition without a leader (an election, a broker down) is
		// left out of the count rather than failing the overview.
		var shardErrs *kadm.ShardErrors
		starts, err := c.admin(ctx).ListStartOffsets(ctx, names...)
		if err != nil && (!errors.As(err, &shardErrs) || starts == nil) {
			return err
		}
		ends, err := c.admin(ctx).ListEndOffsets(ctx, names...)
		if err != nil && (!errors.As(err, &shardErrs) || ends == nil) {
			return err
		}
		ends.Each(func(e kadm.ListedOffset) {
			if s, ok := starts.Lookup(e.Topic, e.Partition); ok && e.Err == nil && s.Err == nil && e.Offset > s.Offset {
				out.Records += e.Offset - s.Offset
			}
		})
	}
	out.RecordsPerSec = c.stats.totalRate()
	if err := c.requireGroups(ctx); err == nil {
		out.GroupsSupported = true
	} else if err != errGroupsUnsupported {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (c *Console) getBrokers(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	bs, err := c.admin(ctx).ListBrokers(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"brokers": brokersOf(bs)})
	return nil
}

func brokersOf(bs []kadm.BrokerDetail) []brokerJSON {
	out := make([]brokerJSON, 0, len(bs))
	for _, b := range bs {
		out = append(out, brokerJSON{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
