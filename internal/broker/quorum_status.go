package broker

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stromhq/strom/internal/kafka/handler"
)

// quorumMetrics counts this node's metadata proposals (every metadata
// change it makes: topic creations, configs, fencing, registrations).
type quorumMetrics struct {
	ok, failed atomic.Uint64
	latency    prometheus.Histogram // seconds from Propose to applied here
}

func newQuorumMetrics() *quorumMetrics {
	return &quorumMetrics{latency: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "strom_quorum_proposal_seconds",
		Help:    "Time from proposing a metadata change on this node to its being committed and applied here.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
	})}
}

func (m *quorumMetrics) observe(start time.Time, err error) {
	if err != nil {
		m.failed.Add(1)
		return
	}
	m.ok.Add(1)
	m.latency.Observe(time.Since(start).Seconds())
}

// QuorumState is handler.QuorumSource: the raft group's status in
// Kafka's terms (node ids, not raft ids; the term as the epoch; raft
// indexes as offsets).
func (q *quorum) QuorumState() handler.QuorumState {
	if q.group == nil { // read-only: no leader
		out := handler.QuorumState{Leader: -1}
		for _, v := range q.voters {
			out.Voters = append(out.Voters, handler.QuorumVoter{ID: v.ID})
		}
		return out
	}
	st := q.group.Status()
	out := handler.QuorumState{
		Leader:        int32(st.Leader) - 1,
		Epoch:         int32(st.Term),
		HighWatermark: int64(st.Commit),
		IsLeader:      st.State == "StateLeader",
	}
	for _, v := range q.voters {
		qv := handler.QuorumVoter{ID: v.ID}
		if host, port, err := net.SplitHostPort(v.Addr); err == nil {
			p, _ := strconv.ParseUint(port, 10, 16)
			qv.Host, qv.Port = host, uint16(p)
		}
		if out.IsLeader {
			id := uint64(v.ID) + 1
			qv.LogEnd = int64(st.Match[id])
			qv.LastFetch, qv.LastCaughtUp = st.LastContact[id], st.CaughtUp[id]
		}
		out.Voters = append(out.Voters, qv)
	}
	return out
}
