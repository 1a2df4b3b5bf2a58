package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Many partitions: topics of partitionsPerTopic, created topicsPerRequest
// to a CreateTopics request, as an operator's script would.
const (
	partitionsPerTopic = 100
	topicsPerRequest   = 10
)

// topicSet is n partitions as topics named prefix-000, prefix-001, ...,
// each of partitionsPerTopic partitions but the last, which has the rest.
type topicSet struct {
	Prefix     string
	Partitions int
	RF         int16 // replication factor; 0 is 1
}

func (ts topicSet) rf() int16 { return max(ts.RF, 1) }

func (ts topicSet) topics() (names []string, partitions []int32) {
	for i, left := 0, ts.Partitions; left > 0; i++ {
		p := min(left, partitionsPerTopic)
		names = append(names, fmt.Sprintf("%s-%03d", ts.Prefix, i))
		partitions = append(partitions, int32(p))
		left -= p
	}
	return names, partitions
}

func (ts topicSet) describe() string {
	names, _ := ts.topics()
	return fmt.Sprintf("%d partitions as %d topics of up to %d (%s-000 ...), replication factor %d, created %d topics to a CreateTopics request (kadm.CreateTopics), one request at a time",
		ts.Partitions, len(names), partitionsPerTopic, ts.Prefix, ts.rf(), topicsPerRequest)
}

// create creates the set's topics through adm, topicsPerRequest at a time,
// calling after (when not nil) with the partitions created so far after
// each request; an error from it stops the creation and is returned.
func (ts topicSet) create(ctx context.Context, adm *kadm.Client, after func(created int) error) error {
	names, partitions := ts.topics()
	created := 0
	for i := 0; i < len(names); {
		// One request holds topics of one partition count (kadm's
		// CreateTopics takes one count): all but maybe the last.
		j := i + 1
		for j < len(names) && j-i < topicsPerRequest && partitions[j] == partitions[i] {
			j++
		}
		resp, err := adm.CreateTopics(ctx, partitions[i], ts.rf(), nil, names[i:j]...)
		if err == nil {
			for _, r := range resp {
				// A request retried by the client after its answer
				// was late finds its own topics: the prefix is this
				// run's, on an empty data dir.
				if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
					err = r.Err
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("create topics %s..%s: %w", names[i], names[j-1], err)
		}
		created += int(partitions[i]) * (j - i)
		if after != nil {
			if err := after(created); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// served counts the set's partitions in a Metadata response that have a
// leader and no error.
func (ts topicSet) served(resp *kmsg.MetadataResponse) int {
	n := 0
	for _, t := range resp.Topics {
		if t.Topic == nil || !strings.HasPrefix(*t.Topic, ts.Prefix+"-") || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 0 {
				n++
			}
		}
	}
	return n
}

// adminClient is a kgo client for kadm requests to addr.
func adminClient(addr string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("strombench-admin"))
}

// procFDs counts the files a process holds open, and which of them are
// sockets: its listeners and its connections.
func procFDs(pid int) (files, sockets int, err error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, ent := range ents {
		files++
		if target, err := os.Readlink(filepath.Join(dir, ent.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return files, sockets, nil
}

// procFileLimit is the soft limit on a process's open files, from
// /proc/<pid>/limits; 0 when it cannot be read or is unlimited.
func procFileLimit(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}

// filesNote describes a process's open files against its limit, for an
// error that running out of them may explain.
func filesNote(pid int) string {
	files, _, err := procFDs(pid)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (the broker holds %d open files; its limit is %d)", files, procFileLimit(pid))
}
