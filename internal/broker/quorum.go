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
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/raftgroup"
	"github.com/stromhq/strom/internal/raftnet"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// metadataGroup is the metadata quorum's raft group id.
const metadataGroup = 0

// quorum is a cluster node's metadata quorum: the raft transport on the
// controller listener, the raft group of the metadata log in
// <data dir>/__cluster_metadata-0, and the replicated store it applies to.
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

	store   *metadata.Store
	group   *raftgroup.Group
	tr      *raftnet.Transport
	metrics *quorumMetrics // set by open
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
	ln, err := net.Listen("tcp", q.addr)
	if err != nil {
		return nil, fmt.Errorf("controller listener of node.id=%d: %w (is a node with the same node.id already running?)", q.node, err)
	}
	var group *raftgroup.Group
	ready := make(chan struct{})
	q.duplicate = make(chan struct{})
	q.metrics = newQuorumMetrics()
	q.store = metadata.NewReplicatedStore(proposer{&group, ready, q.metrics}, 0)
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
				group.Step(m)
			default: // not started yet: raft retries
			}
		},
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
	q.tr, err = raftnet.New(tcfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	group, err = raftgroup.Start(raftgroup.Config{
		Group: metadataGroup, ID: uint64(q.node) + 1, Voters: ids,
		Dir: filepath.Join(dataDir, logdir.ClusterMetadataDir), FS: fsys, SM: q.store,
		Send: func(msgs []*raftpb.Message) {
			for _, m := range msgs {
				q.tr.Send(metadataGroup, m)
			}
		},
		Logger: q.log,
	})
	if err != nil {
		q.tr.Close()
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
			return nil, fmt.Errorf("metadata quorum: %w", st.Err)
		}
		if time.Now().After(deadline) {
			q.close()
			return nil, fmt.Errorf("metadata quorum: applied %d of %d committed entries in a minute", st.Applied, target)
		}
		time.Sleep(5 * time.Millisecond)
	}
	q.log.Info("metadata quorum started", "node", q.node, "voters", len(q.voters), "controller_addr", ln.Addr().String(),
		"applied", group.Status().Applied)
	return q.store, nil
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

// migrate moves a single node's metadata file into the quorum at a
// cluster node's first start: its topics (placed on this node), producer
// id counter and dynamic configs become records, then the file is renamed
// aside. It waits for a quorum leader.
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
	for _, r := range recs {
		for {
			err := q.store.Commit(r)
			if err == nil || errors.Is(err, metadata.ErrTopicExists) {
				break
			}
			if !errors.Is(err, metadata.ErrNoQuorum) {
				return fmt.Errorf("migrating %s: %w", path, err)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("migrating %s: no metadata quorum: %w", path, err)
			}
		}
	}
	if err := fsys.Rename(path, path+".migrated"); err != nil {
		return fmt.Errorf("migrating %s: %w", path, err)
	}
	q.log.Info("migrated the single-node metadata file into the metadata quorum", "records", len(recs), "file", path+".migrated")
	return nil
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
