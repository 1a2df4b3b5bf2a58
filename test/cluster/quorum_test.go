package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/cmd/strom/servecmd"
	"github.com/stromhq/strom/internal/cli"
)

// describeQuorum sends DescribeQuorum for __cluster_metadata-0 to addr.
func (c *testCluster) describeQuorum(addr string) (kmsg.DescribeQuorumResponseTopicPartition, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := c.direct(addr).Request(ctx, req)
	if err != nil {
		return kmsg.DescribeQuorumResponseTopicPartition{}, err
	}
	r := resp.(*kmsg.DescribeQuorumResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return kmsg.DescribeQuorumResponseTopicPartition{}, fmt.Errorf("answer %+v", r)
	}
	return r.Topics[0].Partitions[0], nil
}

// TestClusterDescribeQuorum: the quorum leader describes every voter
// (log end, last fetch, last caught up); the others answer
// NOT_LEADER_OR_FOLLOWER naming it; a voter that is killed stops being
// heard from while the others are caught up; `strom cluster info` shows
// the quorum through any broker; /metrics has the quorum's and brokers'
// series.
func TestClusterDescribeQuorum(t *testing.T) {
	c := startCluster(t, 3)
	md := c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	lead := c.nodes[md.Controller-1]
	var p kmsg.DescribeQuorumResponseTopicPartition
	waitFor(t, 20*time.Second, "the leader describes three caught-up voters", func() error {
		var err error
		if p, err = c.describeQuorum(lead.kafka); err != nil {
			return err
		}
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil || p.LeaderID != lead.id || len(p.CurrentVoters) != 3 || p.HighWatermark <= 0 {
			return fmt.Errorf("%v leader %d hw %d voters %+v", err, p.LeaderID, p.HighWatermark, p.CurrentVoters)
		}
		for _, v := range p.CurrentVoters {
			if v.LogEndOffset != p.HighWatermark || v.LastFetchTimestamp <= 0 || v.LastCaughtUpTimestamp <= 0 {
				return fmt.Errorf("voter %+v, high watermark %d", v, p.HighWatermark)
			}
		}
		return nil
	})
	if p.LeaderEpoch < 1 {
		t.Fatalf("leader epoch %d", p.LeaderEpoch)
	}
	for _, nd := range c.nodes {
		if nd == lead {
			continue
		}
		fp, err := c.describeQuorum(nd.kafka)
		if err != nil || fp.ErrorCode != kerr.NotLeaderForPartition.Code || fp.LeaderID != lead.id || fp.LeaderEpoch != p.LeaderEpoch {
			t.Fatalf("follower %d: %v %+v", nd.id, err, fp)
		}
	}

	// strom cluster info, through a follower, shows the quorum.
	var follower *node
	for _, nd := range c.nodes {
		if nd != lead {
			follower = nd
		}
	}
	var out, errOut bytes.Buffer
	if code := cli.Main(context.Background(), []string{"cluster", "info", "--brokers", follower.kafka, "--output", "json"}, &out, &errOut, servecmd.Commands()...); code != 0 {
		t.Fatalf("cluster info: exit %d: %s", code, errOut.String())
	}
	var info struct {
		Controller int32 `json:"controller"`
		Quorum     *struct {
			Leader int32 `json:"leader"`
			Voters []struct {
				ID  int32 `json:"id"`
				Lag int64 `json:"lag"`
			} `json:"voters"`
		} `json:"quorum"`
	}
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.Quorum == nil || info.Quorum.Leader != lead.id || len(info.Quorum.Voters) != 3 {
		t.Fatalf("cluster info json: %v\n%s", err, out.String())
	}
	out.Reset()
	if code := cli.Main(context.Background(), []string{"cluster", "info", "--brokers", follower.kafka}, &out, &errOut, servecmd.Commands()...); code != 0 {
		t.Fatalf("cluster info: exit %d: %s", code, errOut.String())
	}
	if !regexp.MustCompile(fmt.Sprintf(`Metadata quorum:\s+leader %d`, lead.id)).MatchString(out.String()) ||
		!regexp.MustCompile(`VOTER\s+LOG END\s+LAG\s+LAST FETCH\s+LAST CAUGHT UP`).MatchString(out.String()) {
		t.Fatalf("cluster info:\n%s", out.String())
	}

	// Metrics: the leader says it leads and has made proposals (the
	// brokers' registrations at least); every node counts the brokers.
	m := scrape(t, lead.http)
	for _, want := range []string{"strom_quorum_is_leader 1", "strom_brokers{state=\"live\"} 3", "strom_brokers{state=\"fenced\"} 0"} {
		if !bytes.Contains(m, []byte(want)) {
			t.Fatalf("leader's metrics lack %q:\n%s", want, grepMetrics(m, "strom_quorum|strom_brokers"))
		}
	}
	for _, re := range []string{`strom_quorum_commit_index [1-9]`, `strom_quorum_applied_index [1-9]`, `strom_quorum_leader_changes_total [1-9]`,
		`strom_quorum_proposal_seconds_count [0-9]`, `strom_quorum_voter_lag_entries\{voter="\d"\} 0`} {
		if !regexp.MustCompile(re).Match(m) {
			t.Fatalf("leader's metrics lack %s:\n%s", re, grepMetrics(m, "strom_quorum|strom_brokers"))
		}
	}
	if fm := scrape(t, follower.http); !bytes.Contains(fm, []byte("strom_quorum_is_leader 0")) {
		t.Fatalf("follower's metrics:\n%s", grepMetrics(fm, "strom_quorum"))
	}

	// A voter killed: its last fetch stops while the others' go on, and
	// once fenced the metrics count it.
	victim := follower
	victim.proc.Kill(t)
	killed := time.Now().UnixMilli()
	waitFor(t, 20*time.Second, "the dead voter stops, the live ones go on", func() error {
		p, err := c.describeQuorum(lead.kafka)
		if err != nil {
			return err
		}
		if p.ErrorCode != 0 {
			return kerr.ErrorForCode(p.ErrorCode)
		}
		for _, v := range p.CurrentVoters {
			dead := v.ReplicaID == victim.id
			if dead && v.LastFetchTimestamp > killed {
				return fmt.Errorf("dead voter fetched at %d, killed at %d", v.LastFetchTimestamp, killed)
			}
			if !dead && v.LastFetchTimestamp <= killed+500 {
				return fmt.Errorf("live voter %d last fetched at %d", v.ReplicaID, v.LastFetchTimestamp)
			}
		}
		return nil
	})
	waitFor(t, 20*time.Second, "the dead broker counted as fenced", func() error {
		if m := scrape(t, lead.http); !bytes.Contains(m, []byte(`strom_brokers{state="fenced"} 1`)) {
			return fmt.Errorf("%s", grepMetrics(m, "strom_brokers"))
		}
		return nil
	})
}

func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	return b
}

func grepMetrics(m []byte, pattern string) string {
	re := regexp.MustCompile(pattern)
	var out []byte
	for _, l := range bytes.Split(m, []byte("\n")) {
		if re.Match(l) && !bytes.HasPrefix(l, []byte("#")) {
			out = append(append(out, l...), '\n')
		}
	}
	return string(out) + " (" + strconv.Itoa(len(m)) + " bytes)"
}
