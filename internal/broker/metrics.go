package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/raftgroup"
	"github.com/stromhq/strom/internal/raftnet"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// collector exposes the broker's counters to Prometheus at scrape time, so
// the hot paths only bump atomics.
type collector struct {
	b *Broker

	conns, accepted, refused, protoErrs, panics, bytesIn, bytesOut, requests *prometheus.Desc
	readTimeouts, queuedBytes, queuedLimit, budgetWaiting, budgetWaits       *prometheus.Desc
	logEnd, logStart, logSize                                                *prometheus.Desc
	partitions, storageErrors                                                *prometheus.Desc
	fileLimit, maxPartitions, cachedFiles, cacheOpens, cacheEvictions        *prometheus.Desc
	// a cluster node's metadata quorum and brokers (quorumMetrics has the
	// proposal latency histogram)
	quorumLeader, quorumLeaderChanges, quorumTerm, quorumCommit, quorumApplied *prometheus.Desc
	quorumProposals, quorumVoterLag, brokers                                   *prometheus.Desc
	replicas                                                                   *prometheus.Desc
	raftRefused, raftAuthFailed                                                *prometheus.Desc
	raftSnapshotStreams                                                        *prometheus.Desc
}

func newCollector(b *Broker) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("strom_"+name, help, labels, nil)
	}
	return &collector{
		b:             b,
		conns:         d("connections_open", "Open Kafka connections."),
		accepted:      d("connections_accepted_total", "Kafka connections accepted."),
		refused:       d("connections_refused_total", "Kafka connections refused by connection limits."),
		protoErrs:     d("protocol_errors_total", "Connections closed for malformed requests."),
		panics:        d("handler_panics_total", "Panics recovered in request handlers."),
		bytesIn:       d("network_received_bytes_total", "Bytes read from Kafka connections."),
		bytesOut:      d("network_sent_bytes_total", "Bytes written to Kafka connections."),
		requests:      d("requests_total", "Kafka requests by API.", "api"),
		readTimeouts:  d("request_read_timeouts_total", "Connections closed for a request not received within socket.request.read.timeout.ms."),
		queuedBytes:   d("request_bytes_queued", "Request bytes held now across connections (being read or handled)."),
		queuedLimit:   d("request_bytes_queued_limit", "queued.max.request.bytes; 0 when unlimited."),
		budgetWaiting: d("request_budget_waiting", "Connections whose reader waits for request budget now."),
		budgetWaits:   d("request_budget_waits_total", "Times a reader waited for request budget."),
		logEnd:        d("partition_log_end_offset", "Log end offset (high watermark).", "topic", "partition"),
		logStart:      d("partition_log_start_offset", "Log start offset.", "topic", "partition"),
		logSize:       d("partition_size_bytes", "Bytes on disk.", "topic", "partition"),
		partitions: d("partitions", "Partitions by storage state: ok; degraded (writes fail for now, e.g. a full disk, "+
			"and are retried; reads served); failed (an fsync failed: no writes until a restart).", "state"),
		storageErrors: d("storage_errors_total", "Storage errors met by partition logs, by cause "+
			"(enospc, emfile, eperm, erofs, eio, other).", "kind"),
		fileLimit:      d("open_file_limit", "The process's open-file limit (RLIMIT_NOFILE) after raising it; 0 when unknown."),
		maxPartitions:  d("partitions_max", "Most partitions this broker may hold: max.broker.partitions or what the open-file limit leaves, the smaller; -1 for no bound."),
		cachedFiles:    d("segment_files_cached", "Sealed segments' files open in the descriptor cache now."),
		cacheOpens:     d("segment_file_opens_total", "Sealed segments' files opened by the descriptor cache."),
		cacheEvictions: d("segment_file_evictions_total", "Idle sealed segments' files closed to keep the descriptor cache within its bound."),

		quorumLeader:        d("quorum_is_leader", "1 while this node leads the metadata quorum (is the active controller), else 0."),
		quorumLeaderChanges: d("quorum_leader_changes_total", "Times this node learned of a new metadata quorum leader since it started."),
		quorumTerm:          d("quorum_term", "The metadata quorum's raft term (the leader epoch) as this node knows it."),
		quorumCommit:        d("quorum_commit_index", "The metadata log's commit index on this node (the quorum's high watermark)."),
		quorumApplied:       d("quorum_applied_index", "The metadata log's index applied to this node's metadata image."),
		quorumProposals:     d("quorum_proposals_total", "Metadata changes proposed on this node, by result (ok: committed and applied; failed: dropped, timed out or stopped).", "result"),
		quorumVoterLag:      d("quorum_voter_lag_entries", "On the quorum leader: entries each voter's log is behind the leader's.", "voter"),
		brokers:             d("brokers", "Brokers registered in the cluster's metadata, by state (live, fenced).", "state"),
		raftRefused:         d("raft_connections_refused_total", "Connections to the controller listener (raft transport) refused in their handshake: TLS, authentication, a bad or old hello, another cluster."),
		raftAuthFailed:      d("raft_authentication_failures_total", "Connections to the controller listener whose TLS handshake or SASL authentication failed."),
		raftSnapshotStreams: d("raft_snapshot_streams_total", "Raft snapshot streams (a compacted partition's region too large for a message): sent (acknowledged), send_failed, received (delivered), refused.", "result"),
		replicas:            d("partition_replicas", "Raft replicas of replicated partitions on this node, by state (quiesced: idle, not ticking; awake).", "state"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.accepted, c.refused, c.protoErrs, c.panics, c.bytesIn, c.bytesOut, c.requests,
		c.readTimeouts, c.queuedBytes, c.queuedLimit, c.budgetWaiting, c.budgetWaits, c.logEnd, c.logStart, c.logSize, c.partitions, c.storageErrors,
		c.fileLimit, c.maxPartitions, c.cachedFiles, c.cacheOpens, c.cacheEvictions} {
		ch <- d
	}
	if q := c.b.quorum; q != nil {
		for _, d := range []*prometheus.Desc{c.quorumLeader, c.quorumLeaderChanges, c.quorumTerm, c.quorumCommit, c.quorumApplied,
			c.quorumProposals, c.quorumVoterLag, c.brokers, c.replicas, c.raftRefused, c.raftAuthFailed, c.raftSnapshotStreams} {
			ch <- d
		}
		q.metrics.latency.Describe(ch)
	}
}

// collectQuorum reports the node's metadata quorum (one voter on a single
// node) and brokers.
func (c *collector) collectQuorum(ch chan<- prometheus.Metric, q *quorum) {
	var st raftgroup.Status // read-only (no group): zeros
	if q.group != nil {
		st = q.group.Status()
	}
	leader := 0.0
	if st.State == "StateLeader" {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(c.quorumLeader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(c.quorumLeaderChanges, prometheus.CounterValue, float64(st.LeaderChanges))
	ch <- prometheus.MustNewConstMetric(c.quorumTerm, prometheus.GaugeValue, float64(st.Term))
	ch <- prometheus.MustNewConstMetric(c.quorumCommit, prometheus.GaugeValue, float64(st.Commit))
	ch <- prometheus.MustNewConstMetric(c.quorumApplied, prometheus.GaugeValue, float64(st.Applied))
	ch <- prometheus.MustNewConstMetric(c.quorumProposals, prometheus.CounterValue, float64(q.metrics.ok.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(c.quorumProposals, prometheus.CounterValue, float64(q.metrics.failed.Load()), "failed")
	for id, m := range st.Match {
		lag := float64(0)
		if st.LastIndex > m {
			lag = float64(st.LastIndex - m)
		}
		ch <- prometheus.MustNewConstMetric(c.quorumVoterLag, prometheus.GaugeValue, lag, strconv.FormatUint(id-1, 10))
	}
	q.metrics.latency.Collect(ch)
	var live, fenced int
	for _, b := range c.b.cluster.AllBrokers() {
		if b.Fenced {
			fenced++
		} else {
			live++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.brokers, prometheus.GaugeValue, float64(live), "live")
	ch <- prometheus.MustNewConstMetric(c.brokers, prometheus.GaugeValue, float64(fenced), "fenced")
	quiesced, awake := c.b.cluster.ReplicaCounts()
	ch <- prometheus.MustNewConstMetric(c.replicas, prometheus.GaugeValue, float64(quiesced), "quiesced")
	ch <- prometheus.MustNewConstMetric(c.replicas, prometheus.GaugeValue, float64(awake), "awake")
	var ts raftnet.Stats // a cluster of one has no transport: zeros
	if q.tr != nil {
		ts = q.tr.Stats()
	}
	ch <- prometheus.MustNewConstMetric(c.raftRefused, prometheus.CounterValue, float64(ts.Refused))
	ch <- prometheus.MustNewConstMetric(c.raftAuthFailed, prometheus.CounterValue, float64(ts.AuthFailed))
	for result, n := range map[string]uint64{"sent": ts.SnapshotsSent, "send_failed": ts.SnapshotsFailed, "received": ts.SnapshotsReceived, "refused": ts.SnapshotsRefused} {
		ch <- prometheus.MustNewConstMetric(c.raftSnapshotStreams, prometheus.CounterValue, float64(n), result)
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.kafka.Stats()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(st.OpenConnections))
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(st.AcceptedConnections))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.RefusedConnections))
	ch <- prometheus.MustNewConstMetric(c.protoErrs, prometheus.CounterValue, float64(st.ProtocolErrors))
	ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(st.Panics))
	ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(st.BytesIn))
	ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(st.BytesOut))
	ch <- prometheus.MustNewConstMetric(c.readTimeouts, prometheus.CounterValue, float64(st.RequestReadTimeouts))
	ch <- prometheus.MustNewConstMetric(c.queuedBytes, prometheus.GaugeValue, float64(st.QueuedRequestBytes))
	ch <- prometheus.MustNewConstMetric(c.queuedLimit, prometheus.GaugeValue, float64(st.QueuedRequestBytesLimit))
	ch <- prometheus.MustNewConstMetric(c.budgetWaiting, prometheus.GaugeValue, float64(st.RequestBudgetWaiting))
	ch <- prometheus.MustNewConstMetric(c.budgetWaits, prometheus.CounterValue, float64(st.RequestBudgetWaits))
	for key, n := range st.Requests {
		name := kmsg.NameForKey(key)
		if name == "" {
			name = strconv.Itoa(int(key))
		}
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), name)
	}
	states := map[seglog.Health]int{}
	for _, ph := range c.b.cluster.UnhealthyPartitions() {
		states[ph.Health]++
	}
	total := 0
	for _, t := range c.b.cluster.Topics() {
		total += int(t.Partitions)
	}
	states[seglog.Healthy] = max(total-states[seglog.Degraded]-states[seglog.Failed], 0)
	for _, h := range []seglog.Health{seglog.Healthy, seglog.Degraded, seglog.Failed} {
		ch <- prometheus.MustNewConstMetric(c.partitions, prometheus.GaugeValue, float64(states[h]), h.String())
	}
	errs := c.b.cluster.StorageErrors()
	for _, k := range seglog.ErrorKinds {
		ch <- prometheus.MustNewConstMetric(c.storageErrors, prometheus.CounterValue, float64(errs[k]), k)
	}
	ch <- prometheus.MustNewConstMetric(c.fileLimit, prometheus.GaugeValue, float64(c.b.cluster.FileBudget().Limit))
	ch <- prometheus.MustNewConstMetric(c.maxPartitions, prometheus.GaugeValue, float64(c.b.cluster.MaxPartitions()))
	fc := c.b.cluster.CachedFiles()
	ch <- prometheus.MustNewConstMetric(c.cachedFiles, prometheus.GaugeValue, float64(fc.Open))
	ch <- prometheus.MustNewConstMetric(c.cacheOpens, prometheus.CounterValue, float64(fc.Opens))
	ch <- prometheus.MustNewConstMetric(c.cacheEvictions, prometheus.CounterValue, float64(fc.Evictions))
	if q := c.b.quorum; q != nil {
		c.collectQuorum(ch, q)
	}
	for _, t := range c.b.cluster.Topics() {
		for _, p := range c.b.cluster.Partitions(t.Name) {
			idx := strconv.Itoa(int(p.Index))
			ch <- prometheus.MustNewConstMetric(c.logEnd, prometheus.GaugeValue, float64(p.EndOffset()), t.Name, idx)
			ch <- prometheus.MustNewConstMetric(c.logStart, prometheus.GaugeValue, float64(p.StartOffset()), t.Name, idx)
			ch <- prometheus.MustNewConstMetric(c.logSize, prometheus.GaugeValue, float64(p.Size()), t.Name, idx)
		}
	}
}
