package handler

import (
	"context"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/partition"
)

// DescribeLogDirs: the one log directory (the data directory) with the size
// of each partition in it.
//
// Behavior:
//   - A null topic list asks for every partition; otherwise the listed
//     partitions that exist are described and the others left out, as
//     Kafka does (a topic with none of them is left out too).
//   - Size is the bytes of the partition's segments; OffsetLag is 0 and
//     IsFuture false: there are no replica moves between directories.
//   - The directory is the data directory's absolute path; its error code
//     is always 0 (a failed disk fails the broker's logs, not this answer).
//
// Version notes: v1 is v0 (throttle behaviour); v2+ flexible; v3 top-level
// ErrorCode; v4 TotalBytes and UsableBytes of the directory's file system
// (statfs; -1 where unknown); v5 IsCordoned, never set.
func init() { register(35, 0, 5, handleDescribeLogDirs) }

func handleDescribeLogDirs(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = h.c.DataDir()
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	if req.Version >= 4 {
		dir.TotalBytes, dir.UsableBytes = diskBytes(dir.Dir)
	}
	dir.Topics = []kmsg.DescribeLogDirsResponseDirTopic{}
	if r.Topics == nil {
		for _, t := range h.c.Topics() {
			dir.Topics = appendLogDirTopic(dir.Topics, t.Name, h.c.Partitions(t.Name), nil)
		}
	} else {
		// A topic may be listed more than once: merge its partitions,
		// keeping the order topics first appear in.
		var order []string
		want := map[string]map[int32]bool{}
		for _, rt := range r.Topics {
			if want[rt.Topic] == nil {
				want[rt.Topic] = map[int32]bool{}
				order = append(order, rt.Topic)
			}
			for _, p := range rt.Partitions {
				want[rt.Topic][p] = true
			}
		}
		for _, name := range order {
			dir.Topics = appendLogDirTopic(dir.Topics, name, h.c.Partitions(name), want[name])
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return now(resp)
}

// appendLogDirTopic adds a topic with those of parts in want (all when
// want is nil), unless there are none.
func appendLogDirTopic(dst []kmsg.DescribeLogDirsResponseDirTopic, name string, parts []*partition.Partition, want map[int32]bool) []kmsg.DescribeLogDirsResponseDirTopic {
	t := kmsg.NewDescribeLogDirsResponseDirTopic()
	t.Topic = name
	for _, p := range parts {
		if want != nil && !want[p.Index] {
			continue
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = p.Index
		dp.Size = p.Size()
		t.Partitions = append(t.Partitions, dp)
	}
	if len(t.Partitions) == 0 {
		return dst
	}
	return append(dst, t)
}
