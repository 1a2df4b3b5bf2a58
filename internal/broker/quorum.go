package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/raftgroup"
	"github.com/stromhq/strom/internal/raftnet"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// metadataGroup is the metadata quorum's raft group id.
const metadataGroup = 0

// quorum is a node's metadata quorum: the raft group of the metadata log
// in <data dir>/__cluster_metadata-0, the replicated store it applies to,
// and, when the quorum has other voters, the raft transport on the
// controller listener. A single node is a cluster of one: its quorum has
// one voter (itself), no transport and no controller listener (it has no
// peer to hear from; a CONTROLLER listener configured on a one-voter node
// is not opened), and its group leads within its Start (raftgroup
// campaigns at once for an only voter).
// The broker owns it: started by cluster.Open (through OpenMetadata, once
// the data directory is locked), stopped by Shutdown after the listeners.
type quorum struct {
	log    *slog.Logger
	node   int32
	voters []metadata.Voter
	addr   string // the controller listener
	// sec secures the raft transport (controller.go); nil: plaintext.
	sec *controllerSecurity
	// duplicate is closed, with duplicateErr set, when a peer refused this
	// node because another live process runs with its node.id (the
	// transport's OnDuplicate); the broker then fails (Failed).
	duplicate    chan struct{}
	duplicateErr error

	store *metadata.Store
	// group is nil when readOnly says why (a cluster of one on a full
	// disk: openReadOnly).
	group    *raftgroup.Group
	readOnly error
	tr       *raftnet.Transport // nil without peers (a one-voter quorum)
	metrics  *quorumMetrics     // set by open
	// partitions takes the messages of every other group (the replicated
	// partitions' raft groups) once the cluster is open.
	partitions atomic.Pointer[cluster.Cluster]
}

// clusterIDFor derives a cluster id from the voters, so that the nodes of
// a cluster started from the same controller.quorum.voters agree on one
// without `strom storage format`, and a node given another voters list
// is refused by its peers (the transport's hello carries the id).
func clusterIDFor(voters []metadata.Voter) string {
	vs := slices.Clone(voters)
	sort.Slice(vs, func(i, j int) bool { return vs[i].ID < vs[j].ID })
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(int(v.ID)) + "@" + v.Addr
	}
	sum := sha256.Sum256([]byte("strom-cluster:" + strings.Join(parts, ",")))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// open starts the transport and the raft group and waits until the store
// has applied what this node had committed (a restart replays its log).
// fsys and dataDir are the data directory's; the cluster id is its
// meta.properties'.
func (q *quorum) open(fsys vfs.FS, dataDir, clusterID string) (*metadata.Store, error) {
	peers := map[int32]string{}
	var ids []uint64
	for _, v := range q.voters {
		ids = append(ids, uint64(v.ID)+1)
		if v.ID != q.node {
			peers[v.ID] = v.Addr
		}
	}
	var group *raftgroup.Group
	ready := make(chan struct{})
	q.duplicate = make(chan struct{})
	q.metrics = newQuorumMetrics()
	q.store = metadata.NewReplicatedStore(proposer{&group, ready, q.metrics}, 0)
	send := func([]*raftpb.Message) {} // a one-voter group has no one to send to
	if len(peers) > 0 {
		if err := q.startTransport(fsys, dataDir, clusterID, peers, func() *raftgroup.Group { return group }, ready); err != nil {
			return nil, err
		}
		send = func(msgs []*raftpb.Message) {
			for _, m := range msgs {
				q.tr.Send(metadataGroup, m)
			}
		}
	}
	var err error
	group, err = raftgroup.Start(raftgroup.Config{
		Group: metadataGroup, ID: uint64(q.node) + 1, Voters: ids,
		Dir: filepath.Join(dataDir, logdir.ClusterMetadataDir), FS: fsys, SM: q.store,
		Send: send, Logger: q.log,
	})
	if err != nil {
		if q.tr != nil {
			q.tr.Close()
		}
		if len(peers) == 0 && noRoom(err) {
			return q.openReadOnly(fsys, dataDir, err)
		}
		return nil, fmt.Errorf("metadata quorum: %w", err)
	}
	q.group = group
	close(ready)
	// Catch up with what this node had committed before it stopped.
	target := group.Status().Commit
	deadline := time.Now().Add(time.Minute)
	for st := group.Status(); st.Applied < target; st = group.Status() {
		if st.Err != nil {
			q.close()
			if len(peers) == 0 && noRoom(st.Err) {
				return q.openReadOnly(fsys, dataDir, st.Err)
			}
			return nil, fmt.Errorf("metadata quorum: %w", st.Err)
		}
		if time.Now().After(deadline) {
			q.close()
			return nil, fmt.Errorf("metadata quorum: applied %d of %d committed entries in a minute", st.Applied, target)
		}
		time.Sleep(time.Millisecond)
	}
	if err := checkVoters(group.Status().Voters, ids, q.node); err != nil {
		q.close()
		return nil, err
	}
	if len(peers) == 0 {
		if _, err := fsys.Stat(filepath.Join(dataDir, metadata.FileName)); err != nil && len(q.store.Brokers()) == 0 && len(q.store.Topics()) == 0 {
			// A log that never registered this broker nor held a topic,
			// and no file to migrate: a new data directory, or one whose
			// metadata is lost. Package cluster refuses the latter (its
			// partition directories are kept, not sorted out).
			q.store.SetFound(false)
		}
		// The only voter campaigns at once: wait for that, so that what
		// follows (the migration, the broker's registration) is not
		// refused for want of a leader.
		// Its term is durable once the leader's first entry is
		// committed: until then a full disk may still stop it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := group.WaitLeader(ctx)
		cancel()
		for st := group.Status(); err == nil && (st.State != "StateLeader" || st.Commit < st.LastIndex); st = group.Status() {
			switch {
			case st.Err != nil:
				err = st.Err
			case time.Now().After(deadline):
				err = fmt.Errorf("the leader's first entry not committed in a minute")
			default:
				time.Sleep(time.Millisecond)
			}
		}
		if err != nil {
			q.close()
			if noRoom(err) {
				return q.openReadOnly(fsys, dataDir, err)
			}
			return nil, fmt.Errorf("metadata quorum of one voter: no leader: %w", err)
		}
		q.log.Info("metadata quorum started", "node", q.node, "voters", 1, "applied", group.Status().Applied)
		return q.store, nil
	}
	q.log.Info("metadata quorum started", "node", q.node, "voters", len(q.voters), "controller_addr", q.tr.Addr().String(),
		"applied", group.Status().Applied)
	return q.store, nil
}

// noRoom reports whether err is a full disk's.
func noRoom(err error) bool { return seglog.ErrorKind(err) == "enospc" }

// openReadOnly serves a cluster of one whose metadata log cannot take the
// election it needs to lead (its term must be fsynced first): a disk that
// is full at start. The store is what the log holds, replayed without raft
// (raftgroup.Replay), so the broker serves its topics, reads and, once
// there is room, writes to its partitions, as a node on a full disk
// always did; every metadata change (topics, configs, producer id blocks)
// is refused with the reason until a restart with free space.
func (q *quorum) openReadOnly(fsys vfs.FS, dataDir string, cause error) (*metadata.Store, error) {
	q.group = nil
	q.readOnly = fmt.Errorf("the metadata log cannot be written (%w): metadata changes are refused until the broker restarts with free space", cause)
	q.store = metadata.NewReplicatedStore(refuser{q.readOnly}, 0)
	applied, err := raftgroup.Replay(raftgroup.Config{Group: metadataGroup, Dir: filepath.Join(dataDir, logdir.ClusterMetadataDir), FS: fsys, SM: q.store})
	if err != nil {
		return nil, fmt.Errorf("metadata quorum: %w (replaying the log after: %v)", err, cause)
	}
	if _, err := fsys.Stat(filepath.Join(dataDir, metadata.FileName)); err != nil && len(q.store.Brokers()) == 0 && len(q.store.Topics()) == 0 {
		q.store.SetFound(false)
	}
	q.log.Warn("the disk is full: serving the metadata log read-only; restart the broker once there is room to change metadata again",
		"applied", applied, "err", cause)
	return q.store, nil
}

// refuser is the proposer of a read-only metadata log.
type refuser struct{ err error }

func (r refuser) Propose(context.Context, []byte) (any, error) { return nil, r.err }

// checkVoters refuses a metadata log whose voters are not the configured
// ones: raftgroup ignores Config.Voters once its directory holds a log, so
// a single node's data directory (a one-voter log) started as a node of a
// cluster, or the reverse, would run a quorum of its own beside the
// others' — two controllers, and a split cluster. got is empty before the
// log has applied its configuration (nothing to compare).
func checkVoters(got, want []uint64, node int32) error {
	if len(got) == 0 {
		return nil
	}
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	if slices.Equal(a, b) {
		return nil
	}
	ids := func(raftIDs []uint64) string {
		var parts []string
		for _, id := range raftIDs {
			parts = append(parts, strconv.FormatUint(id-1, 10))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Errorf("%w: the metadata log in %s has the voters (node ids) %s, but this node (node.id=%d) is configured with %s (controller.quorum.voters; none: this node alone): "+
		"a data directory cannot move between a single node and a cluster, or between clusters, with its metadata log; start it with the voters it was formatted with",
		metadata.ErrInvalidConfig, logdir.ClusterMetadataDir, ids(a), node, ids(b))
}

// startTransport opens the controller listener and the raft transport of
// a quorum with peers; messages of the metadata group go to the group
// once ready is closed.
func (q *quorum) startTransport(fsys vfs.FS, dataDir, clusterID string, peers map[int32]string, group func() *raftgroup.Group, ready <-chan struct{}) error {
	ln, err := net.Listen("tcp", q.addr)
	if err != nil {
		return fmt.Errorf("controller listener of node.id=%d: %w (is a node with the same node.id already running?)", q.node, err)
	}
	// The hello names the cluster and its voters: a node formatted for
	// another cluster, or given another controller.quorum.voters, is
	// refused by its peers (nodes bootstrapped with different voters
	// would split the quorum silently: see raftgroup's doc).
	tcfg := raftnet.Config{
		NodeID: q.node, ClusterID: clusterID + "/" + clusterIDFor(q.voters), Listener: ln, Peers: peers, Logger: q.log,
		Deliver: func(g uint64, m *raftpb.Message) {
			if g != metadataGroup {
				if c := q.partitions.Load(); c != nil {
					c.StepReplica(g, m)
				}
				return
			}
			select {
			case <-ready:
				group().Step(m)
			default: // not started yet: raft retries
			}
		},
	}
	// Streamed snapshots of partition groups (a compacted region below
	// the anchor); the metadata group's snapshots ride in its messages.
	tcfg.SnapshotSink = func(g uint64, m *raftpb.Message) (raftnet.ChunkSink, error) {
		c := q.partitions.Load()
		if g == metadataGroup || c == nil {
			return nil, fmt.Errorf("no partition replica of raft group %d here", g)
		}
		sink, err := c.ReplicaSnapshotSink(g, m)
		if err != nil {
			return nil, err
		}
		return sink, nil
	}
	tcfg.OnDuplicate = func(err error) { // called once
		q.duplicateErr = err
		close(q.duplicate)
	}
	if q.sec != nil {
		scram := scramSource{live: q.store.Security, bootstrap: bootstrapScram(fsys, dataDir, q.log)}
		q.sec.transport(&tcfg, scram)
		q.log.Info("the raft transport is secured", "controller", q.sec.String())
	}
	tr, err := raftnet.New(tcfg)
	if err != nil {
		ln.Close()
		return err
	}
	q.tr = tr
	return nil
}

// bootstrapScram is the SCRAM credentials of the metadata file a first
// start migrates (`strom storage format --add-scram` writes them there),
// for the controller listener to check peers against before the quorum
// has formed; nil without the file or credentials in it.
func bootstrapScram(fsys vfs.FS, dataDir string, log *slog.Logger) *metadata.Security {
	if _, err := fsys.Stat(filepath.Join(dataDir, metadata.FileName)); err != nil {
		return nil
	}
	old, err := metadata.OpenStore(fsys, dataDir)
	if err != nil {
		log.Warn("the metadata file to migrate does not open: its SCRAM credentials are not used for the controller listener", "err", err)
		return nil
	}
	if sec := old.Security(); len(sec.ScramUsers()) > 0 {
		return sec
	}
	return nil
}

// migrate moves a metadata file (__strom_metadata, written by a single
// node before its metadata was a one-voter quorum, or by `strom storage
// format --add-scram`) into the quorum at a node's first start: its topics
// (placed on this node, where their data is), producer id counter,
// dynamic configs, SCRAM credentials, ACLs and delegation tokens become
// records, then the file is renamed aside (<file>.migrated). It waits for
// a quorum leader.
//
// A crash in the middle is safe: the file is renamed only once every
// record is committed, and the next start migrates it again, every record
// idempotent (a topic or token already there is skipped, the producer id
// counter is only raised to the file's, configs, credentials and ACLs are
// set again to the same values).
func (q *quorum) migrate(ctx context.Context, fsys vfs.FS, dataDir string) error {
	path := filepath.Join(dataDir, metadata.FileName)
	if _, err := fsys.Stat(path); err != nil {
		return nil // nothing to migrate
	}
	old, err := metadata.OpenStore(fsys, dataDir)
	if err != nil {
		return fmt.Errorf("migrating %s: %w", path, err)
	}
	recs := old.Import(q.node)
	// Topics first, many proposals at once: the raft group takes them in
	// one append and one fsync (a first start of a directory of 1,000
	// topics would otherwise pay 1,000 fsyncs). Each record stands alone,
	// so their order does not matter.
	var topics, rest []metadata.Record
	for _, r := range recs {
		if r.Type == metadata.RecCreateTopics {
			topics = append(topics, r)
		} else {
			rest = append(rest, r)
		}
	}
	work := make(chan metadata.Record)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(64, max(len(topics), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				if err := q.commitMigrated(ctx, r); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
feed:
	for _, r := range topics {
		select {
		case work <- r:
		case err = <-errs:
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return fmt.Errorf("migrating %s: %w", path, err)
	}
	for _, r := range rest {
		if r.Type == metadata.RecAllocateProducerIDs {
			// Raise the counter to the file's, no further: a retried
			// migration must not raise it twice.
			if r.Count -= q.store.NextProducerID(); r.Count <= 0 {
				continue
			}
		}
		if err := q.commitMigrated(ctx, r); err != nil {
			return fmt.Errorf("migrating %s: %w", path, err)
		}
	}
	if err := fsys.Rename(path, path+".migrated"); err != nil {
		return fmt.Errorf("migrating %s: %w", path, err)
	}
	if err := fsys.SyncDir(dataDir); err != nil {
		// The rename may not last a power loss: the next start then
		// migrates the file again, which is harmless (see above).
		q.log.Warn("cannot sync the data directory after migrating the metadata file", "dir", dataDir, "err", err)
	}
	q.log.Info("migrated the metadata file into the metadata quorum", "records", len(recs), "file", path+".migrated")
	return nil
}

// commitMigrated commits one record of a migration, retrying while the
// quorum has no leader (until ctx ends); a record whose object is there
// already (a retried migration) counts as committed.
func (q *quorum) commitMigrated(ctx context.Context, r metadata.Record) error {
	for {
		err := q.store.Commit(r)
		if err == nil || errors.Is(err, metadata.ErrTopicExists) || errors.Is(err, metadata.ErrTokenExists) {
			return nil
		}
		if !errors.Is(err, metadata.ErrNoQuorum) || q.group == nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no metadata quorum: %w", err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = q.group.WaitLeader(wctx) // the next Commit tells
		cancel()
	}
}

func (q *quorum) close() {
	if q.group != nil {
		q.group.Stop()
	}
	if q.tr != nil {
		q.tr.Close()
	}
}

// handOver, on the quorum's leader, transfers leadership to the voter
// with the highest match index and waits for it (until ctx ends), so
// that a SIGTERM of the active controller does not leave proposals
// forwarded to a stopped node until they time out.
func (q *quorum) handOver(ctx context.Context) {
	if q.group == nil {
		return
	}
	self := uint64(q.node) + 1
	st := q.group.Status()
	if st.Leader != self {
		return
	}
	var best, match uint64
	for id, m := range st.Match {
		if id != self && st.Active[id] && m >= match {
			best, match = id, m
		}
	}
	if best == 0 {
		return
	}
	if err := q.group.TransferLeadership(ctx, best); err != nil {
		q.log.Warn("stopping while leading the metadata quorum", "err", err)
	}
}

// Leader is the quorum leader's node id (-1: none known).
func (q *quorum) Leader() int32 {
	if q.group == nil {
		return -1
	}
	return int32(q.group.Leader()) - 1
}

// Active reports, on the leader, the voters raft heard from recently.
func (q *quorum) Active() map[int32]bool {
	if q.group == nil {
		return nil
	}
	st := q.group.Status()
	if st.Active == nil {
		return nil
	}
	out := make(map[int32]bool, len(st.Active))
	for id, ok := range st.Active {
		out[int32(id)-1] = ok
	}
	return out
}

// proposer hands the store's records to the raft group once it runs.
type proposer struct {
	g       **raftgroup.Group
	ready   <-chan struct{}
	metrics *quorumMetrics
}

func (p proposer) Propose(ctx context.Context, payload []byte) (any, error) {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	start := time.Now()
	v, err := (*p.g).Propose(ctx, payload)
	p.metrics.observe(start, err)
	return v, err
}
