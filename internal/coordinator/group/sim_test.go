package group

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// simLedger is what simulated consumers report: which partitions each
// member was assigned in each generation, and which commits succeeded.
type simLedger struct {
	mu      sync.Mutex
	owned   map[int32]map[string][]int32 // generation -> member -> partitions
	commits []simCommit
}

type simCommit struct {
	gen       int32
	member    string
	partition int32
}

// simMember is a consumer driving the coordinator the way a client library
// does: join (with the KIP-394 step), sync (the leader assigns the 12
// partitions round robin), heartbeat, commit what it owns, rejoin when told
// to, and sometimes leave or die (go silent).
func simMember(ctx context.Context, c *Coordinator, name string, rng *rand.Rand, l *simLedger) {
	memberID := ""
	const parts = 12
	for ctx.Err() == nil {
		jr, _ := c.JoinGroup(JoinRequest{
			Group: "sim", MemberID: memberID, ClientID: name, ProtocolType: "consumer",
			Protocols:      []Protocol{{Name: "rr", Metadata: []byte(name)}},
			SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second, RequireKnownMemberID: true,
		}).Wait(ctx)
		switch {
		case errors.Is(jr.Err, ErrMemberIDRequired):
			memberID = jr.MemberID
			continue
		case errors.Is(jr.Err, ErrUnknownMemberID):
			memberID = ""
			continue
		case jr.Err != nil:
			time.Sleep(100 * time.Millisecond)
			continue
		}
		memberID = jr.MemberID
		var assign map[string][]byte
		if jr.Leader == memberID {
			assign = map[string][]byte{}
			for p := 0; p < parts; p++ {
				m := jr.Members[p%len(jr.Members)].MemberID
				assign[m] = append(assign[m], []byte(strconv.Itoa(p)+",")...)
			}
		}
		sr, werr := c.SyncGroup(SyncRequest{Group: "sim", MemberID: memberID, Generation: jr.Generation, Assignments: assign}).Wait(ctx)
		if werr != nil || sr.Err != nil {
			continue
		}
		var owned []int32
		for _, f := range strings.Split(strings.TrimSuffix(string(sr.Assignment), ","), ",") {
			if n, err := strconv.Atoi(f); err == nil {
				owned = append(owned, int32(n))
			}
		}
		l.mu.Lock()
		if l.owned[jr.Generation] == nil {
			l.owned[jr.Generation] = map[string][]int32{}
		}
		l.owned[jr.Generation][memberID] = owned
		l.mu.Unlock()
	session:
		for ctx.Err() == nil {
			time.Sleep(time.Duration(1000+rng.IntN(1500)) * time.Millisecond)
			switch r := rng.IntN(100); {
			case r < 2: // die: go silent
				return
			case r < 4: // leave
				c.LeaveGroup("sim", []LeaveMember{{MemberID: memberID}}).Wait(ctx)
				return
			case r < 40 && len(owned) > 0:
				req := CommitRequest{Group: "sim", MemberID: memberID, Generation: jr.Generation}
				for _, p := range owned {
					req.Offsets = append(req.Offsets, CommitOffset{Topic: "t", Partition: p, Offset: int64(r), LeaderEpoch: -1, Timestamp: -1})
				}
				cr, werr := c.CommitOffsets(req).Wait(ctx)
				if werr == nil && cr.Err == nil { // werr: the simulation ended first
					l.mu.Lock()
					for i, p := range owned {
						if cr.Errs[i] == nil {
							l.commits = append(l.commits, simCommit{jr.Generation, memberID, p})
						}
					}
					l.mu.Unlock()
				}
			}
			err, _ := c.Heartbeat(HeartbeatRequest{Group: "sim", MemberID: memberID, Generation: jr.Generation}).Wait(ctx)
			switch {
			case err == nil:
			case errors.Is(err, ErrRebalanceInProgress):
				break session
			default:
				memberID = ""
				break session
			}
		}
	}
}

// TestSimulatedConsumers runs consumers that join, rebalance, commit, leave
// and die at random for ten minutes of fake time, and checks the guarantee
// the group protocol exists for: a commit succeeds only from the member
// that owns the partition in the group's current generation, so two
// members never both commit a partition for the same generation, and in
// every generation the partitions are split without overlap.
func TestSimulatedConsumers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMemFS(t)
		c, closeC := memCoordinator(t, mem, -1)
		defer closeC()
		l := &simLedger{owned: map[int32]map[string][]int32{}}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		rng := rand.New(rand.NewPCG(7, 11))
		start := func(i int) {
			seed := rng.Uint64()
			wg.Go(func() { simMember(ctx, c, fmt.Sprintf("m%d", i), rand.New(rand.NewPCG(seed, 1)), l) })
		}
		for i := range 4 {
			start(i)
		}
		for i := 4; i < 40; i++ {
			time.Sleep(15 * time.Second)
			start(i)
		}
		cancel()
		wg.Wait()
		synctest.Wait()

		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.owned) < 10 || len(l.commits) < 50 {
			t.Fatalf("too little happened: %d generations, %d commits", len(l.owned), len(l.commits))
		}
		for gen, members := range l.owned {
			seen := map[int32]string{}
			for m, ps := range members {
				for _, p := range ps {
					if o, dup := seen[p]; dup {
						t.Errorf("generation %d: partition %d assigned to %s and %s", gen, p, o, m)
					}
					seen[p] = m
				}
			}
		}
		for _, cm := range l.commits {
			owns := false
			for _, p := range l.owned[cm.gen][cm.member] {
				owns = owns || p == cm.partition
			}
			if !owns {
				t.Errorf("commit of partition %d by %s in generation %d, which it did not own", cm.partition, cm.member, cm.gen)
			}
		}
		t.Logf("%d generations, %d successful commits", len(l.owned), len(l.commits))
	})
}

// TestSimulatedConsumers848 runs KIP-848 members that join, heartbeat the
// partitions they hold, release what the coordinator takes away, commit,
// leave and die at random, over ten minutes of fake time, with topics
// appearing and growing. It checks the protocol's promise: a live member
// is never given a partition another live member still holds, and every
// partition ends up held once the group settles.
func TestSimulatedConsumers848(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMemFS(t)
		var topicMu sync.Mutex
		topics := map[string]int32{"a": 6, "b": 3}
		c, closeC := memCoordinatorCfg(t, mem, func(cfg *Config) {
			cfg.Topics = func() map[string]int32 {
				topicMu.Lock()
				defer topicMu.Unlock()
				out := map[string]int32{}
				for k, v := range topics {
					out[k] = v
				}
				return out
			}
			cfg.ConsumerSessionTimeout = 6 * time.Second
			cfg.ConsumerHeartbeatInterval = time.Second
		})
		defer closeC()

		var mu sync.Mutex
		holder := map[TopicPartition]string{} // who holds each partition
		alive := map[string]bool{}
		var violations []string
		commits := 0
		take := func(name string, held, next []TopicPartition) {
			mu.Lock()
			defer mu.Unlock()
			for _, tp := range held {
				if !slices.Contains(next, tp) && holder[tp] == name {
					delete(holder, tp)
				}
			}
			for _, tp := range next {
				if h := holder[tp]; h != "" && h != name && alive[h] {
					violations = append(violations, fmt.Sprintf("%v given to %s while %s holds it", tp, name, h))
				}
				holder[tp] = name
			}
		}
		member := func(ctx context.Context, name string, rng *rand.Rand) {
			mu.Lock()
			alive[name] = true
			mu.Unlock()
			id, epoch := name+"-id", int32(0)
			var held []TopicPartition
			subs := []string{"a"}
			if rng.IntN(2) == 0 {
				subs = []string{"a", "b"}
			}
			for ctx.Err() == nil {
				req := ConsumerHeartbeat{Group: "sim848", MemberID: id, MemberEpoch: epoch, RebalanceTimeout: -1, Owned: append([]TopicPartition{}, held...)}
				if epoch == 0 {
					req.Owned, req.SubscribedTopics, req.RebalanceTimeout = []TopicPartition{}, subs, 10*time.Second
					req.SubscribedRegex = ptr("c.*")
				}
				r, _ := c.ConsumerGroupHeartbeat(req).Wait(ctx)
				switch {
				case errors.Is(r.Err, ErrUnknownMemberID), errors.Is(r.Err, ErrFencedMemberEpoch):
					take(name, held, nil)
					held, epoch = nil, 0
					if errors.Is(r.Err, ErrUnknownMemberID) {
						id = fmt.Sprintf("%s-id%d", name, rng.IntN(1000))
					}
					continue
				case r.Err != nil:
					time.Sleep(200 * time.Millisecond)
					continue
				}
				epoch = r.MemberEpoch
				if r.HasAssignment {
					take(name, held, r.Assignment)
					held = r.Assignment
				}
				if len(held) > 0 && rng.IntN(3) == 0 {
					cr := CommitRequest{Group: "sim848", MemberID: id, Generation: epoch, Version: 9}
					for _, tp := range held {
						cr.Offsets = append(cr.Offsets, CommitOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: 1, LeaderEpoch: -1, Timestamp: -1})
					}
					if res, werr := c.CommitOffsets(cr).Wait(ctx); werr == nil && res.Err == nil {
						mu.Lock()
						commits++
						mu.Unlock()
					}
				}
				time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
				switch n := rng.IntN(200); {
				case n == 0: // die
					mu.Lock()
					alive[name] = false
					mu.Unlock()
					<-ctx.Done()
					return
				case n == 1: // leave
					c.ConsumerGroupHeartbeat(ConsumerHeartbeat{Group: "sim848", MemberID: id, MemberEpoch: -1, RebalanceTimeout: -1}).Wait(ctx)
					take(name, held, nil)
					mu.Lock()
					alive[name] = false
					mu.Unlock()
					return
				}
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		rng := rand.New(rand.NewPCG(3, 5))
		for i := range 25 {
			seed := rng.Uint64()
			name := fmt.Sprintf("m%d", i)
			wg.Go(func() { member(ctx, name, rand.New(rand.NewPCG(seed, 2))) })
			time.Sleep(20 * time.Second)
			switch i {
			case 8:
				topicMu.Lock()
				topics["c1"] = 4 // matches everyone's regex
				topicMu.Unlock()
			case 16:
				topicMu.Lock()
				topics["a"] = 9 // more partitions
				topicMu.Unlock()
			}
		}
		// Let the group settle, then check that everything is held.
		time.Sleep(30 * time.Second)
		mu.Lock()
		heldCount := 0
		for _, h := range holder {
			if alive[h] {
				heldCount++
			}
		}
		live := 0
		for _, a := range alive {
			if a {
				live++
			}
		}
		mu.Unlock()
		cancel()
		wg.Wait()
		synctest.Wait()
		for _, v := range violations {
			t.Error(v)
		}
		if live > 0 && heldCount != 9+3+4 {
			t.Errorf("%d live members hold %d partitions once settled, want 16", live, heldCount)
		}
		if commits < 50 {
			t.Errorf("only %d successful commits", commits)
		}
		t.Logf("%d live members at the end, %d successful commits", live, commits)
	})
}

func ptr[T any](v T) *T { return &v }
