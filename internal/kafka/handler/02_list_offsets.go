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

// ListOffsets: the offset of each partition for a timestamp or one of the
// special timestamps.
//
// Behavior, by Timestamp:
//   - -2 (earliest) and -4 (earliest local: there is no tiered storage, so
//     the same): the log start offset.
//   - -1 (latest): the high watermark, or the last stable offset for
//     read_committed (the first offset of the oldest ongoing transaction);
//     leader epoch is the current one. A timestamp search for
//     read_committed finds nothing at or past the last stable offset.
//   - -3 (max timestamp, KIP-734): the first record with the largest
//     timestamp and that timestamp; -1/-1 for an empty log.
//   - -5 (latest tiered, KIP-1005): nothing is tiered, so offset -1 and
//     leader epoch -1, as Kafka answers without remote storage.
//   - any other value: the first record whose timestamp is >= it and its
//     timestamp (log.OffsetForTimestamp), or offset -1/timestamp -1 when
//     every record is older, with no error.
//
// Timestamps other than the -3 lookup and the search are -1. The leader
// epoch of a found offset is 0, the only epoch there has been.
// A partition listed twice is INVALID_REQUEST for both (v1+, as Kafka).
// CurrentLeaderEpoch (v4+) other than ours is FENCED_LEADER_EPOCH or
// UNKNOWN_LEADER_EPOCH.
//
// Version notes: v0 has Kafka's pre-0.10 semantics (legacyOffsetsBefore):
// a list of at most MaxNumOffsets offsets, newest first, drawn from the
// segments' base offsets (and the log end offset) whose file times are at or
// before the timestamp. kafka-node's offsetOutOfRange recipe (Offset.fetch
// with time now and maxNum 2, then the smallest) depends on it.
// v1 single offset and timestamp; v2 isolation level and throttle; v4
// leader epochs; v6+ flexible; v7 -3; v8 -4; v9 -5; v10 TimeoutMillis
// (ignored: nothing is remote). v11 (-6, earliest pending upload) is not
// served.
func init() { register(2, 0, 10, handleListOffsets) }

func handleListOffsets(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	type tp struct {
		t string
		p int32
	}
	seen := map[tp]int{}
	if req.Version >= 1 {
		for _, rt := range r.Topics {
			for _, rp := range rt.Partitions {
				seen[tp{rt.Topic, rp.Partition}]++
			}
		}
	}
	readCommitted := r.IsolationLevel == 1
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			var err error
			var p *partition.Partition
			if seen[tp{rt.Topic, rp.Partition}] > 1 {
				err = fmt.Errorf("partition %d listed twice: %w", rp.Partition, kerr.InvalidRequest)
			} else {
				p, err = h.c.Partition(rt.Topic, rp.Partition)
			}
			if err == nil && req.Version >= 4 {
				err = leaderEpochError(rp.CurrentLeaderEpoch, p.LeaderEpoch())
			}
			if err == nil && req.Version == 0 {
				sp.OldStyleOffsets = legacyOffsetsBefore(p, rp.Timestamp, rp.MaxNumOffsets, time.Now())
			} else if err == nil {
				sp.Offset, sp.Timestamp, sp.LeaderEpoch, err = listOffset(p, rp.Timestamp, readCommitted)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp)
}

// listOffset answers one partition: offset, timestamp and leader epoch.
func listOffset(p *partition.Partition, ts int64, readCommitted bool) (int64, int64, int32, error) {
	switch ts {
	case -2, -4: // earliest, earliest local
		return p.StartOffset(), record.NoTimestamp, p.LeaderEpoch(), nil
	case -1: // latest
		if readCommitted {
			return p.LastStableOffset(), record.NoTimestamp, p.LeaderEpoch(), nil
		}
		return p.HighWatermark(), record.NoTimestamp, p.LeaderEpoch(), nil
	case -5: // latest tiered: nothing is tiered
		return -1, record.NoTimestamp, -1, nil
	case -3: // max timestamp
		res, err := p.MaxTimestamp()
		if err != nil || !res.Found {
			return -1, record.NoTimestamp, -1, err
		}
		return res.Offset, res.Timestamp, p.LeaderEpoch(), nil
	}
	res, err := p.OffsetForTimestamp(ts)
	if err != nil || !res.Found {
		return -1, record.NoTimestamp, -1, err
	}
	if readCommitted && res.Offset >= p.LastStableOffset() {
		return -1, record.NoTimestamp, -1, nil
	}
	return res.Offset, res.Timestamp, p.LeaderEpoch(), nil
}

// legacyOffsetsBefore answers ListOffsets v0 as Kafka did before timestamps
// were in records: candidates are every segment's (base offset, file time)
// and, when the active segment holds data, (log end offset, now); the answer
// lists, newest first, at most maxNum candidates starting from the newest one
// whose time is <= ts (-1: the newest; -2: the oldest).
func legacyOffsetsBefore(p *partition.Partition, ts int64, maxNum int32, now time.Time) []int64 {
	segs := p.Segments()
	type cand struct {
		offset int64
		ms     int64
	}
	cands := make([]cand, 0, len(segs)+1)
	for _, s := range segs {
		cands = append(cands, cand{max(s.Base, p.StartOffset()), s.Modified.UnixMilli()})
	}
	if n := len(segs); n > 0 && segs[n-1].Size > 0 {
		cands = append(cands, cand{p.EndOffset(), now.UnixMilli()})
	}
	start := -1
	switch ts {
	case -1:
		start = len(cands) - 1
	case -2:
		start = 0
	default:
		for i := len(cands) - 1; i >= 0; i-- {
			if cands[i].ms <= ts {
				start = i
				break
			}
		}
	}
	out := []int64{}
	for i := start; i >= 0 && int32(len(out)) < maxNum; i-- {
		if len(out) == 0 || out[len(out)-1] != cands[i].offset {
			out = append(out, cands[i].offset)
		}
	}
	return out
}
