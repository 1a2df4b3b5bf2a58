package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newClusterCmd() *cobra.Command {
	conn := &connFlags{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show what a cluster is made of",
		Example: `  strom cluster info
  strom cluster info --brokers kafka1:9092 --output json`,
	}
	conn.register(cmd.PersistentFlags())
	cmd.AddCommand(clusterInfoCmd(conn))
	return kafkaCommand(cmd)
}

type clusterInfo struct {
	ClusterID   string              `json:"cluster_id"`
	Controller  int32               `json:"controller"`
	Topics      int                 `json:"topics"`
	Brokers     []brokerInfo        `json:"brokers"`
	APIVersions []brokerAPIVersions `json:"api_versions"`
	// Quorum is the metadata quorum of a cluster (nil: a single node, or
	// a broker without DescribeQuorum).
	Quorum *quorumInfo `json:"quorum,omitempty"`
	// QuorumError says why the quorum could not be described.
	QuorumError string `json:"quorum_error,omitempty"`
}

type brokerInfo struct {
	ID   int32   `json:"id"`
	Host string  `json:"host"`
	Port int32   `json:"port"`
	Rack *string `json:"rack"`
}

type brokerAPIVersions struct {
	Broker int32        `json:"broker"`
	APIs   []apiVersion `json:"apis"`
	Error  string       `json:"error,omitempty"`
}

type apiVersion struct {
	Key  int16  `json:"key"`
	Name string `json:"name"`
	Min  int16  `json:"min"`
	Max  int16  `json:"max"`
}

func clusterInfoCmd(conn *connFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Show the cluster id, controller, brokers, topic count and API versions",
		Long: `Show the cluster id, its controller, every broker with its advertised
address and rack, how many (non-internal) topics it holds, and the
request versions each broker serves; in a cluster, the metadata quorum:
its leader (the active controller), epoch and high watermark, and each
voter's log end, lag and last contact with the leader (DescribeQuorum).

JSON: {"cluster_id","controller","topics",
  "brokers":[{"id","host","port","rack"}],
  "api_versions":[{"broker","apis":[{"key","name","min","max"}]}],
  "quorum":{"leader","epoch","high_watermark",
    "voters":[{"id","log_end","lag","last_fetch_ms","last_caught_up_ms"}]}}
("quorum" only in a cluster; "quorum_error" when it could not be read)`,
		Example: `  strom cluster info
  strom cluster info --bootstrap-server localhost:9092
  strom cluster info --output json | jq '.brokers[].host'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd)
			defer cancel()
			cl, err := conn.client(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			adm.SetTimeoutMillis(int32(conn.timeout / time.Millisecond))
			m, err := adm.Metadata(ctx)
			if err != nil {
				return conn.explain(err)
			}
			versions, err := adm.ApiVersions(ctx)
			if err != nil {
				return conn.explain(err)
			}
			info := clusterInfo{ClusterID: m.Cluster, Controller: m.Controller, Brokers: []brokerInfo{}, APIVersions: []brokerAPIVersions{}}
			m.Topics.FilterInternal()
			info.Topics = len(m.Topics)
			for _, b := range m.Brokers {
				info.Brokers = append(info.Brokers, brokerInfo{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
			}
			sort.Slice(info.Brokers, func(i, j int) bool { return info.Brokers[i].ID < info.Brokers[j].ID })
			for _, v := range versions.Sorted() {
				info.APIVersions = append(info.APIVersions, apiVersionsOf(v))
			}
			if servesQuorum(versions, m.Controller) {
				q, ok, err := describeQuorum(ctx, cl, m.Controller)
				switch {
				case err != nil:
					info.QuorumError = explain(err, conn.with(errContext{})).Error()
				case ok:
					info.Quorum = &q
				}
			}
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			printClusterInfo(cmd.OutOrStdout(), info)
			if info.Quorum != nil {
				printQuorum(cmd.OutOrStdout(), *info.Quorum, time.Now())
			} else if info.QuorumError != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "\nMetadata quorum:  %s\n", info.QuorumError)
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// servesQuorum reports whether the controller serves DescribeQuorum.
func servesQuorum(versions kadm.BrokersApiVersions, controller int32) bool {
	v, ok := versions[controller]
	if !ok || v.Err != nil {
		return false
	}
	_, ok = v.KeyMaxVersion(55)
	return ok
}

func apiVersionsOf(v kadm.BrokerApiVersions) brokerAPIVersions {
	out := brokerAPIVersions{Broker: v.NodeID, APIs: []apiVersion{}}
	if v.Err != nil {
		out.Error = explain(v.Err, errContext{}).Error()
		return out
	}
	v.EachKeySorted(func(key, lo, hi int16) {
		out.APIs = append(out.APIs, apiVersion{Key: key, Name: apiName(key), Min: lo, Max: hi})
	})
	return out
}

func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "" {
		return n
	}
	return fmt.Sprintf("Unknown(%d)", key)
}

func printClusterInfo(w io.Writer, info clusterInfo) {
	controller := fmt.Sprint(info.Controller)
	if info.Controller < 0 {
		controller = "none"
	}
	fmt.Fprintf(w, "Cluster ID:  %s\nController:  %s\nTopics:      %d\n\n", orDefault(info.ClusterID, "-"), controller, info.Topics)
	t := newTable("BROKER", "HOST", "PORT", "RACK")
	for _, b := range info.Brokers {
		rack := ""
		if b.Rack != nil {
			rack = *b.Rack
		}
		t.add(b.ID, b.Host, b.Port, rack)
	}
	t.write(w)

	// One table when every broker serves the same versions (the usual
	// case), else one per broker.
	same := true
	for _, v := range info.APIVersions[min(1, len(info.APIVersions)):] {
		if v.Error != "" || info.APIVersions[0].Error != "" || !slices.Equal(v.APIs, info.APIVersions[0].APIs) {
			same = false
		}
	}
	groups := info.APIVersions
	if same && len(groups) > 1 {
		groups = groups[:1]
	}
	for _, v := range groups {
		who := fmt.Sprintf("broker %d", v.Broker)
		if same && len(info.APIVersions) > 1 {
			who = "all brokers"
		}
		if v.Error != "" {
			fmt.Fprintf(w, "\nAPI versions of %s: %s\n", who, v.Error)
			continue
		}
		fmt.Fprintf(w, "\nAPI versions of %s:\n", who)
		t := newTable("API", "KEY", "MIN", "MAX")
		for _, a := range v.APIs {
			t.add(a.Name, a.Key, a.Min, a.Max)
		}
		t.write(w)
	}
}

// missingAPIs lists the requests among keys that some broker does not
// serve, by name, so that a command can say what the cluster lacks
// instead of failing on its first unsupported request.
func missingAPIs(ctx context.Context, adm *kadm.Client, keys ...int16) ([]string, error) {
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, k := range keys {
		versions.Each(func(v kadm.BrokerApiVersions) {
			if _, ok := v.KeyMaxVersion(k); v.Err == nil && !ok && !slices.Contains(missing, apiName(k)) {
				missing = append(missing, apiName(k))
			}
		})
	}
	return missing, nil
}

// groupAPIs are the requests a consumer group needs: FindCoordinator,
// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch.
var groupAPIs = []int16{10, 11, 14, 12, 13, 8, 9}

// requireAPIs fails with one line naming what the cluster lacks.
func requireAPIs(ctx context.Context, adm *kadm.Client, conn *connFlags, what, hint string, keys ...int16) error {
	missing, err := missingAPIs(ctx, adm, keys...)
	if err != nil {
		return conn.explain(err)
	}
	if len(missing) > 0 {
		return &problem{
			msg:  fmt.Sprintf("the cluster at %s does not support %s (it does not serve %s)", conn.brokers, what, strings.Join(missing, ", ")),
			hint: hint,
		}
	}
	return nil
}
