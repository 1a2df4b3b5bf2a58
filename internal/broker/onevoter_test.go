package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
	"github.com/stromhq/strom/internal/testutil"
)

// TestSingleNodeIsAClusterOfOne: a broker started with no configuration
// keeps its metadata in a metadata log of one voter (__cluster_metadata-0),
// not in the single-node file; it registered itself, so Metadata and
// DescribeCluster list it and name it the controller; a topic created
// through it takes a produce at once, and is there after a restart.
func TestSingleNodeIsAClusterOfOne(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if code := produceRaw(t, cl, "orders", "first"); code != 0 {
		t.Fatalf("produce right after CreateTopics: error code %d", code)
	}
	id := topicID(t, cl, "orders")
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 0 || md.Controller != 0 {
		t.Fatalf("metadata: brokers %+v, controller %d; want broker 0 alone, the controller", md.Brokers, md.Controller)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dc.ErrorCode != 0 || len(dc.Brokers) != 1 || dc.Brokers[0].NodeID != 0 || dc.ControllerID != 0 {
		t.Fatalf("DescribeCluster: code %d, brokers %+v, controller %d", dc.ErrorCode, dc.Brokers, dc.ControllerID)
	}
	dq := kmsg.NewPtrDescribeQuorumRequest()
	qt := kmsg.NewDescribeQuorumRequestTopic()
	qt.Topic = "__cluster_metadata"
	qt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	dq.Topics = append(dq.Topics, qt)
	qr, err := dq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := qr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LeaderID != 0 || len(p.CurrentVoters) != 1 {
		t.Fatalf("DescribeQuorum: %+v; want node 0 leading a quorum of one voter", p)
	}
	cl.Close()
	if fi, err := os.Stat(filepath.Join(dir, logdir.ClusterMetadataDir)); err != nil || !fi.IsDir() {
		t.Fatalf("no metadata log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, metadata.FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a single node wrote %s: %v", metadata.FileName, err)
	}
	stop(t, b)

	b = start(t, dir)
	defer stop(t, b)
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := topicID(t, cl, "orders"); got != id {
		t.Fatalf("topic id after a restart %x, want %x", got, id)
	}
	if code := produceRaw(t, cl, "orders", "second"); code != 0 {
		t.Fatalf("produce after a restart: error code %d", code)
	}
	if got := readAllValues(t, b.KafkaAddr().String(), "orders"); !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("orders-0 after a restart: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, metadata.FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a single node wrote %s: %v", metadata.FileName, err)
	}
}

// TestRestartKeepsItsRegistration: a cluster of one restarted on the same
// addresses keeps the registration its log holds (the restart appends
// only its election's entry), and one on another port registers it.
func TestRestartKeepsItsRegistration(t *testing.T) {
	dir := t.TempDir()
	port, err := testutil.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	startAt := func(addr string) *Broker {
		b, err := Start(Config{DataDir: dir, KafkaAddr: addr, HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := startAt(addr)
	last := b.quorum.group.Status().LastIndex
	stop(t, b)
	b = startAt(addr)
	if got := b.quorum.group.Status().LastIndex; got != last+1 {
		t.Fatalf("a restart on the same address: the log went from %d to %d entries, want one more (the election's)", last, got)
	}
	last = b.quorum.group.Status().LastIndex
	stop(t, b)
	b = startAt("127.0.0.1:0")
	defer stop(t, b)
	if got := b.quorum.group.Status().LastIndex; got != last+2 {
		t.Fatalf("a restart on another port: the log went from %d to %d entries, want two more (election, registration)", last, got)
	}
	if bs := b.Cluster().Brokers(); len(bs) != 1 || bs[0].Port != int32(b.KafkaAddr().(*net.TCPAddr).Port) {
		t.Fatalf("registration after a restart on another port: %+v", bs)
	}
}

// oldDataDir is what writeOldDataDir wrote.
type oldDataDir struct {
	topicID metadata.TopicID
	pid     int64 // a producer id handed out
}

// writeOldDataDir writes dir as a single node wrote it before its metadata
// was a quorum: the cluster state over the metadata file
// (cluster.Open without OpenMetadata, as broker.Start opened it then), the
// group coordinator on it, and `strom storage format --add-scram`'s
// AddScram. It holds a topic with a config override and records, a
// dynamic broker config, an ACL, a SCRAM user, a handed-out producer id
// and a group's committed offset.
func writeOldDataDir(t *testing.T, fsys vfs.FS, dir string) oldDataDir {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	c, err := cluster.Open(cluster.Config{DataDir: dir, FS: fsys, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if c.Replicated() {
		t.Fatal("cluster.Open without OpenMetadata is replicated")
	}
	top, err := c.CreateTopic("legacy", 2, map[string]string{"retention.ms": "3600000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Partition("legacy", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c"} {
		batch, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
			[]record.Record{{Value: []byte(v)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(batch, partition.AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetBrokerConfigs("", map[string]string{"log.retention.ms": "7200000"}, false); err != nil {
		t.Fatal(err)
	}
	if errs, err := c.CreateACLs([]acl.Binding{{ResourceType: acl.ResourceTopic, ResourceName: "legacy", PatternType: acl.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: acl.OpRead, Permission: acl.PermissionAllow}}); err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	pid, err := c.AllocateProducerID()
	if err != nil {
		t.Fatal(err)
	}
	gcfg := group.ConfigFor(c, log)
	gcfg.FollowLeader = false
	g, err := group.Open(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := g.CommitOffsets(group.CommitRequest{Group: "readers", Generation: -1,
		Offsets: []group.CommitOffset{{Topic: "legacy", Partition: 0, Offset: 2, LeaderEpoch: -1, Timestamp: -1}}}).Wait(ctx)
	if err != nil || res.Err != nil || errors.Join(res.Errs...) != nil {
		t.Fatalf("commit: %v %v %v", err, res.Err, res.Errs)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(filepath.Join(dir, logdir.ClusterMetadataDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the old layout has a metadata log: %v", err)
	}
	return oldDataDir{topicID: top.ID, pid: pid}
}

// checkUpgraded checks that everything writeOldDataDir wrote is served by
// broker b.
func checkUpgraded(t *testing.T, b *Broker, old oldDataDir) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if d := td["legacy"]; d.Err != nil || metadata.TopicID(d.ID) != old.topicID || len(d.Partitions) != 2 {
		t.Fatalf("legacy after the upgrade: %+v (id want %x)", d, old.topicID)
	}
	if got := readAllValues(t, b.KafkaAddr().String(), "legacy"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("legacy-0 after the upgrade: %q", got)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("legacy", nil); err != nil || !slices.ContainsFunc(v.Configs, func(c kadm.Config) bool {
		return c.Key == "retention.ms" && c.Value != nil && *c.Value == "3600000" && c.Source == kmsg.ConfigSourceDynamicTopicConfig
	}) {
		t.Fatalf("legacy's retention.ms override after the upgrade: %+v %v", v, err)
	}
	if got := b.Cluster().BrokerConfigs(""); got["log.retention.ms"] != "7200000" {
		t.Fatalf("cluster-wide dynamic broker configs after the upgrade: %v", got)
	}
	sec := b.Cluster().Security()
	if !slices.Contains(sec.ScramUsers(), "alice") {
		t.Fatalf("SCRAM users after the upgrade: %v", sec.ScramUsers())
	}
	if acls := sec.ACLs(); len(acls) != 1 || acls[0].Principal != "User:alice" {
		t.Fatalf("ACLs after the upgrade: %+v", acls)
	}
	if next, err := b.Cluster().AllocateProducerID(); err != nil || next <= old.pid {
		t.Fatalf("producer id after the upgrade: %d %v; want above %d (handed out before)", next, err, old.pid)
	}
	offs, err := adm.FetchOffsets(ctx, "readers")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("legacy", 0); !ok || o.At != 2 {
		t.Fatalf("readers' committed offset on legacy-0 after the upgrade: %+v", o)
	}
}

// TestUpgradeMigratesTheMetadataFile: a data directory written by a
// single node before its metadata was a quorum starts unchanged: its
// metadata file moves into the metadata log at the first start (renamed
// aside), and topics, records, configs, SCRAM users, ACLs, the producer id
// counter and committed offsets are all there; a second start does not
// migrate again.
func TestUpgradeMigratesTheMetadataFile(t *testing.T) {
	dir := t.TempDir()
	old := writeOldDataDir(t, vfs.Default, dir)
	if _, err := AddScram(dir, []string{"SCRAM-SHA-256=[name=alice,password=alice-secret]"}); err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	startLogged := func() *Broker {
		b, err := Start(Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", HTTPAddr: "-", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := startLogged()
	checkUpgraded(t, b, old)
	for name, want := range map[string]bool{metadata.FileName: false, metadata.FileName + ".migrated": true, logdir.ClusterMetadataDir: true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s after the upgrade: %v, want it there: %v", name, err, want)
		}
	}
	stop(t, b)
	if n := strings.Count(logs.String(), "migrated the metadata file"); n != 1 {
		t.Fatalf("%d migrations logged by the first start, want 1", n)
	}

	b = startLogged()
	defer stop(t, b)
	checkUpgraded(t, b, old)
	if n := strings.Count(logs.String(), "migrated the metadata file"); n != 1 {
		t.Fatalf("%d migrations logged after a second start, want the first start's only", n)
	}
}

// TestMigrationCutShortIsRetried: a start that stops in the middle of the
// migration (here: the topics and the producer id counter committed, the
// rest not, the file not renamed) leaves a directory the next start
// migrates again, completely, without taking what the first one committed
// twice (the producer id counter is raised to the file's, no further).
func TestMigrationCutShortIsRetried(t *testing.T) {
	dir := t.TempDir()
	old := writeOldDataDir(t, vfs.Default, dir)
	log := slog.New(slog.DiscardHandler)
	file, err := metadata.OpenStore(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantNext := file.NextProducerID()
	q := &quorum{log: log, node: 0, voters: []metadata.Voter{{ID: 0}}}
	if _, err := q.open(vfs.Default, dir, "cluster"); err != nil {
		t.Fatal(err)
	}
	committed := 0
	for _, r := range file.Import(0) {
		if r.Type != metadata.RecCreateTopics && r.Type != metadata.RecAllocateProducerIDs {
			continue
		}
		if err := q.store.Commit(r); err != nil {
			t.Fatal(err)
		}
		committed++
	}
	q.close() // the crash: the rest not committed, the file still there
	if committed < 3 {
		t.Fatalf("committed %d records before the cut, want the topics and the counter", committed)
	}
	if _, err := os.Stat(filepath.Join(dir, metadata.FileName)); err != nil {
		t.Fatal(err)
	}

	b := start(t, dir)
	defer stop(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx, "legacy")
	if err != nil || metadata.TopicID(td["legacy"].ID) != old.topicID {
		t.Fatalf("legacy after the retried migration: %+v %v", td["legacy"], err)
	}
	if acls := b.Cluster().Security().ACLs(); len(acls) != 1 {
		t.Fatalf("ACLs after the retried migration: %+v", acls)
	}
	next, err := b.Cluster().AllocateProducerID()
	if err != nil {
		t.Fatal(err)
	}
	// The broker takes a block from the counter: its first id is where
	// the counter stood, the file's, not twice the file's.
	if next != wantNext {
		t.Fatalf("first producer id after the retried migration %d, want %d (the file's counter, raised once)", next, wantNext)
	}
}

// TestCreateTopicsPowerCut cuts the power at every write of a CreateTopics
// on a single node (a kill -9 with the page cache lost too): the node
// starts again from each image, the topic is either there whole (its
// partitions open and take a produce) or not at all (and can be created),
// and a CreateTopics answered before the cut is always there: a metadata
// change is answered once it is in the fsynced metadata log.
func TestCreateTopicsPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("two broker starts per write of a CreateTopics")
	}
	for k := 1; ; k++ {
		mem := memfs.New()
		b := startQuiet(t, mem)
		var fired atomic.Bool
		cut := mem.CrashAtWrite(k, memfs.CrashOptions{}, func() { fired.Store(true) })
		_, err := b.Cluster().CreateTopic("cut", 2, nil, false)
		firedDuring := fired.Load()
		img := cut()
		if err != nil && !firedDuring {
			t.Fatalf("write %d: CreateTopic: %v", k, err)
		}
		stopQuietly(b)

		b2 := startQuiet(t, img)
		top, exists := b2.Cluster().Topic("cut")
		if err == nil && !firedDuring && !exists {
			t.Fatalf("write %d: a CreateTopic answered before the cut is lost", k)
		}
		if exists {
			for i := int32(0); i < top.Partitions; i++ {
				if _, err := b2.Cluster().Partition("cut", i); err != nil {
					t.Fatalf("write %d: cut-%d after the restart: %v", k, i, err)
				}
			}
		} else if _, err := b2.Cluster().CreateTopic("cut", 2, nil, false); err != nil {
			t.Fatalf("write %d: creating the topic again after the restart: %v", k, err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(b2.KafkaAddr().String()))
		if err != nil {
			t.Fatal(err)
		}
		if code := produceRaw(t, cl, "cut", fmt.Sprint("after-", k)); code != 0 {
			t.Fatalf("write %d: produce after the restart: error code %d", k, code)
		}
		cl.Close()
		stop(t, b2)
		if !firedDuring {
			if k < 3 {
				t.Fatalf("a CreateTopic of %d writes: the cut never fell inside it", k-1)
			}
			t.Logf("cut at each of the %d writes of a CreateTopic", k-1)
			return
		}
	}
}

// startQuiet starts a broker on fsys with no HTTP listener and no logs.
func startQuiet(t *testing.T, fsys vfs.FS) *Broker {
	t.Helper()
	b, err := Start(Config{DataDir: "/data", FS: fsys, KafkaAddr: "127.0.0.1:0", HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return b
}

// stopQuietly shuts a broker down whose disk image was already taken: its
// errors (none expected) do not matter to the image.
func stopQuietly(b *Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.Shutdown(ctx)
}
