package handler

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
)

// Fetch: reads record batches from each requested partition, long-polling
// until MinBytes are available or MaxWaitMillis passes.
//
// Behavior:
//   - Partitions are read in request order. The first one that returns data
//     may return one whole batch larger than its limit (KIP-74, so a consumer
//     can never be stuck behind a big batch); the rest stop at their
//     PartitionMaxBytes and at what remains of MaxBytes (v3+), which is
//     capped at fetch.max.bytes (16 MiB by default; Kafka 55 MiB) in every
//     version.
//   - A read returns whole batches from the one holding the fetch offset, so
//     a fetch inside a batch returns the whole batch (clients skip the
//     earlier records).
//   - An offset outside [log start, high watermark] is OFFSET_OUT_OF_RANGE
//     (consumers reset on it; kafka-node relies on it). Errored partitions
//     carry -1 for their offsets, as Kafka's do.
//   - Long poll: when fewer than MinBytes were read, no partition errored and
//     MaxWaitMillis > 0, the reply waits (in Reply.Finish) on one
//     partition.Waiter watching every partition of the fetch, the deadline
//     and the connection's context, and re-reads when woken: no polling, no
//     goroutines. A partition error or
//     enough bytes answer at once, as Kafka's fetch purgatory does.
//   - Fetch sessions (KIP-227) are not kept: every request is a full fetch.
//     Epoch 0 (new session) and -1 (no session) get SessionID 0 and a full
//     response, which tells clients the broker made no session, so they go
//     on with full fetches (kgo kills its session; Java and librdkafka keep
//     asking with epoch 0). Any other epoch names a session this broker
//     cannot have: FETCH_SESSION_ID_NOT_FOUND at the top level, as Kafka
//     answers for an evicted session. ForgottenTopics is ignored, as Kafka
//     ignores it in a full fetch.
//   - read_committed (v4+) returns only batches that start below the last
//     stable offset (the first offset of the oldest ongoing transaction),
//     and lists in AbortedTransactions every aborted transaction that may
//     hold records of the returned range (producer id, first offset), from
//     the partition's aborted-transaction index, so clients drop them and
//     the markers; an empty list when there is none (null for
//     read_uncommitted, as Kafka sends it). Control batches are returned
//     like any batch (clients skip them).
//   - v0-3 have no isolation level: they read uncommitted, as in Kafka.
//     Down-conversion drops the control batches, so such consumers see
//     every record, of aborted transactions too.
//   - v0-3 answer in message sets: batches are down-converted to magic 0
//     (v0-1) or 1 (v2-3) by record.DownConvert, and messages before the
//     fetch offset are dropped, as Kafka's down-conversion does. zstd cannot
//     be expressed there: UNSUPPORTED_COMPRESSION_TYPE. A topic with
//     message.downconversion.enable=false answers them UNSUPPORTED_VERSION.
//   - CurrentLeaderEpoch (v9+) other than ours is FENCED_LEADER_EPOCH or
//     UNKNOWN_LEADER_EPOCH. LastFetchedEpoch (v12+) needs no divergence
//     check: there has only ever been epoch 0.
//
// Version notes: v1 throttle; v3 MaxBytes; v4 isolation level, LSO, aborted
// transactions, record batches; v5 LogStartOffset; v7 sessions; v9 current
// leader epoch; v11 rack, PreferredReadReplica (-1); v12+ flexible, and
// KIP-951's CurrentLeader on NOT_LEADER_OR_FOLLOWER (NodeEndpoints from
// v16; leaders.go); v13
// topics by id (unknown: UNKNOWN_TOPIC_ID); v15-18 only change
// replica-fetch fields (ReplicaState, ReplicaDirectoryID, HighWatermark
// tags), ignored: a single node has no followers.
func init() { register(1, 0, 18, handleFetch) }

// fetchPart is one readable partition of a fetch.
type fetchPart struct {
	p        *partition.Partition
	offset   int64
	maxBytes int32
	magic    int8 // record.MagicV2, or the message set magic to convert to
	ti, pi   int  // where its answer is in the response
}

// fetch is one fetch request being answered.
type fetch struct {
	resp          *kmsg.FetchResponse
	parts         []fetchPart
	maxBytes      int
	readCommitted bool
	storageKnown  bool      // the version knows KAFKA_STORAGE_ERROR (v6+)
	errored       bool      // a partition failed before reading: answer at once
	leaders       endpoints // KIP-951's NodeEndpoints (v16+)
}

func handleFetch(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.FetchRequest)
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	arrived := time.Now()
	if req.Version >= 7 && r.SessionEpoch != 0 && r.SessionEpoch != -1 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return now(resp)
	}
	f := h.newFetch(req, r, resp)
	if n := f.read(); f.errored || n >= int(r.MinBytes) || r.MaxWaitMillis <= 0 || len(f.parts) == 0 {
		return now(resp)
	}
	deadline := arrived.Add(time.Duration(r.MaxWaitMillis) * time.Millisecond)
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		// Watch first, then look again: a change after the look wakes the
		// wait below; one between the first read and the Watch moved a
		// partition's offsets, and only then is it read again.
		w := partition.NewWaiter()
		defer w.Stop()
		for i := range f.parts {
			w.Watch(f.parts[i].p)
		}
		if f.moved() {
			if n := f.read(); f.errored || n >= int(r.MinBytes) {
				return resp
			}
		}
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return resp
			case <-h.stopping:
				return resp
			case <-timer.C:
				return resp
			case <-w.C():
			}
			if n := f.read(); f.errored || n >= int(r.MinBytes) {
				return resp
			}
		}
	}}, nil
}

// newFetch resolves the request's partitions and lays out the response:
// partitions that cannot be read get their error now.
func (h *Handler) newFetch(req *server.Request, r *kmsg.FetchRequest, resp *kmsg.FetchResponse) *fetch {
	version := req.Version
	// fetch.max.bytes: the most one response carries, whatever the
	// request asks.
	limit := h.c.Broker().Settings().FetchMaxBytes
	f := &fetch{resp: resp, maxBytes: limit, readCommitted: r.IsolationLevel == 1, storageKnown: version >= 6}
	if version >= 3 {
		f.maxBytes = min(int(max(r.MaxBytes, 0)), limit)
	}
	magic := record.MagicV2
	switch {
	case version <= 1:
		magic = record.MagicV0
	case version <= 3:
		magic = record.MagicV1
	}
	for ti, rt := range r.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		t, topicErr := h.requestTopic(version >= 13, rt.Topic, rt.TopicID)
		if topicErr == nil && magic != record.MagicV2 {
			if ts := h.c.TopicSettings(t.Name); ts != nil && !ts.DownconversionEnable {
				topicErr = fmt.Errorf("topic %q has message.downconversion.enable=false; fetch v%d needs it: %w", t.Name, version, kerr.UnsupportedVersion)
			}
		}
		for pi, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.PreferredReadReplica = -1
			// Empty, not null: librdkafka rejects a null record set
			// ("invalid MessageSetSize -1") and never sees the end.
			sp.RecordBatches = []byte{}
			if f.readCommitted {
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			err := topicErr
			var p *partition.Partition
			if err == nil {
				p, err = h.c.Partition(t.Name, rp.Partition)
			}
			if err == nil && version >= 9 {
				err = leaderEpochError(rp.CurrentLeaderEpoch, p.LeaderEpoch())
			}
			if err != nil {
				f.setError(&sp, err)
				f.errored = true
				if b, epoch, ok := h.leaderHint(req, t, rp.Partition, err); ok && version >= 12 {
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = b.ID, epoch
					if version >= 16 {
						f.leaders.add(b)
					}
				}
			} else {
				f.parts = append(f.parts, fetchPart{p: p, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, magic: magic, ti: ti, pi: pi})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for _, b := range f.leaders {
		nb := kmsg.NewFetchResponseBroker()
		nb.NodeID, nb.Host, nb.Port, nb.Rack = b.ID, b.Host, b.Port, rackOrNil(b.Rack)
		resp.Brokers = append(resp.Brokers, nb)
	}
	return f
}

func (f *fetch) setError(sp *kmsg.FetchResponseTopicPartition, err error) {
	server.ReleaseRecords(sp.RecordBatches)
	sp.ErrorCode = errorCodeFor(err, f.storageKnown)
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
	sp.RecordBatches = []byte{}
}

// moved reports whether a partition's high watermark or log start offset
// differs from what the last read put in the response: whether a read now
// could find something else.
func (f *fetch) moved() bool {
	for i := range f.parts {
		fp := &f.parts[i]
		sp := &f.resp.Topics[fp.ti].Partitions[fp.pi]
		if fp.p.HighWatermark() != sp.HighWatermark || fp.p.StartOffset() != sp.LogStartOffset {
			return true
		}
	}
	return false
}

// read (re)reads every readable partition into the response and returns
// the bytes read from the logs; a read error sets f.errored.
func (f *fetch) read() int {
	total, limit, minOne := 0, f.maxBytes, true
	for i := range f.parts {
		fp := &f.parts[i]
		sp := &f.resp.Topics[fp.ti].Partitions[fp.pi]
		// A read again (long poll) replaces the records of the last one.
		server.ReleaseRecords(sp.RecordBatches)
		sp.ErrorCode, sp.RecordBatches = 0, []byte{}
		read := fp.p.Read
		if fp.magic == record.MagicV2 {
			// Batches served as stored may go from their file to the
			// socket without being read (sendfile).
			read = fp.p.ReadSection
		}
		if f.readCommitted {
			read = fp.p.ReadCommitted
			sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
		}
		rr, err := read(fp.offset, max(0, min(int(fp.maxBytes), limit)), minOne)
		if err != nil {
			f.setError(sp, err)
			f.errored = true
			continue
		}
		if sec := rr.Section; sec != nil {
			sp.HighWatermark = fp.p.HighWatermark()
			sp.LastStableOffset = fp.p.LastStableOffset()
			sp.LogStartOffset = rr.StartOffset
			minOne = false
			limit -= sec.Len
			total += sec.Len
			sp.RecordBatches = server.RecordsFromFile(server.FileRecords{File: sec.File, Off: sec.Off, Len: sec.Len, Release: sec.Release})
			continue
		}
		// Both are read after the data, so neither is below its end.
		sp.HighWatermark = fp.p.HighWatermark()
		sp.LastStableOffset = fp.p.LastStableOffset()
		sp.LogStartOffset = rr.StartOffset
		data := rr.Data
		if len(data) == 0 {
			continue
		}
		minOne = false
		limit -= len(data)
		total += len(data)
		if f.readCommitted {
			for _, a := range fp.p.AbortedTxns(fp.offset, lastOffset(data)) {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				sp.AbortedTransactions = append(sp.AbortedTransactions, at)
			}
		}
		if fp.magic != record.MagicV2 {
			ms, err := record.DownConvert(data, fp.magic, maxDecompressedBytes)
			if err != nil {
				f.setError(sp, err)
				f.errored = true
				continue
			}
			data = record.TrimMessageSet(ms, fp.offset)
		}
		sp.RecordBatches = data
	}
	return total
}

// lastOffset is the last offset of the whole batches in data.
func lastOffset(data []byte) int64 {
	last := int64(-1)
	for len(data) > 0 {
		h, err := record.ReadBatchHeader(data)
		if err != nil || h.Size() > len(data) {
			break
		}
		last = h.LastOffset()
		data = data[h.Size():]
	}
	return last
}
