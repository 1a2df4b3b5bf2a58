package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFollowerDiskFull is issue 18's full disk on one follower: broker 3's
// log.dirs is a small tmpfs the test mounts, filled up to its last MiBs
// while acks=all producers write to an RF=3 partition led by broker 1. Once
// broker 3 cannot write, it falls out of the ISR and the partition keeps
// taking acks=all writes on brokers 1 and 2. Then the space is freed and
// broker 3 restarted: it recovers its log, catches up and rejoins the ISR,
// and the checker finds every acknowledged record once and the replicas
// identical.
func TestFollowerDiskFull(t *testing.T) {
	c := writeCluster(t, 3)
	full := c.nodes[2]
	if err := os.MkdirAll(full.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", full.dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs for broker 3 (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if full.proc != nil {
			full.proc.Stop(t)
		}
		if out, err := exec.Command("umount", full.dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", full.dir, err, out)
		}
	})
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic = "full"
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{1, 2, 3} // broker 1 preferred: the full disk is a follower's
	ct.ReplicaAssignment = append(ct.ReplicaAssignment, ra)
	segment := "4194304"
	ct.Configs = append(ct.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: "segment.bytes", Value: &segment})
	create.Topics = append(create.Topics, ct)
	resp, err := create.RequestWith(ctx, c.direct(c.nodes[0].kafka))
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %v", err, resp)
	}
	waitFor(t, time.Minute, "broker 1 leading with a full ISR", func() error {
		if lead := c.waitLeader(adm, topic, 3, -1); lead != 1 {
			return fmt.Errorf("broker %d leads", lead)
		}
		return nil
	})
	load := c.startLoad(topic, 4, time.Second)

	// Fill broker 3's disk but for 2 MiB.
	var st syscall.Statfs_t
	if err := syscall.Statfs(full.dir, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(full.dir, "filler")
	free := int64(st.Bavail) * st.Bsize
	if err := os.WriteFile(filler, make([]byte, free-2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	filledAt := time.Now()
	waitFor(t, time.Minute, "broker 3 out of the ISR", func() error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		p := md.Topics[topic].Partitions[0]
		if slices.Contains(p.ISR, 3) || p.Leader < 1 {
			return fmt.Errorf("leader %d, ISR %v", p.Leader, p.ISR)
		}
		return nil
	})
	outAt := time.Now()
	waitFor(t, time.Minute, "acks=all acknowledgements without broker 3", func() error {
		if !load.got.since(outAt.Add(time.Second)) {
			return fmt.Errorf("no acknowledgement since broker 3 left the ISR")
		}
		return nil
	})
	t.Logf("broker 3's disk full: out of the ISR %v after the filling; acknowledgements go on", outAt.Sub(filledAt).Round(time.Millisecond))

	// Its metadata log cannot take the ISR change either: the broker
	// stops, as a Kafka broker whose metadata log directory fails does,
	// rather than serve a view of the cluster that only grows stale.
	waitFor(t, 30*time.Second, "broker 3 stopping on its full disk", func() error {
		if exited, err := full.proc.Exited(); !exited || err == nil {
			return fmt.Errorf("exited %v (%v)", exited, err)
		}
		return nil
	})
	if out := full.proc.Output(); !strings.Contains(out, "the metadata log stopped") || !strings.Contains(out, "no space left on device") {
		t.Fatalf("broker 3 stopped without saying its metadata log failed on a full disk:\n%s", out)
	}

	// Space again, and a restart: broker 3 recovers and catches up.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.start(full)
	c.waitLeader(adm, topic, 3, -1)
	load.finish()
	c.checkReplicated(topic, load.got)
}
