package replica

import (
	"sync"
	"time"
)

// Ticker drives the ticks of a node's replicas from one time.Ticker, and
// only of those that are awake: a quiesced replica is taken off its list,
// so 10,000 idle groups cost no timer and no goroutine wake-up per tick
// (a time.Ticker per replica fires 10 times a second each, idle or not).
// Each awake replica gets at most one tick queued (a slow one skips
// ticks rather than piling them up). Election timeouts stay staggered:
// raft draws each replica's timeout at random in [ElectionTicks,
// 2*ElectionTicks) ticks.
//
// Owner: whoever runs the replicas (internal/cluster); Stop after every
// replica using it stopped.
type Ticker struct {
	mu struct {
		sync.Mutex
		awake map[*Replica]struct{}
	}
	stopc chan struct{}
	done  chan struct{}
	stop  sync.Once
}

// NewTicker starts a Ticker ticking every interval.
func NewTicker(interval time.Duration) *Ticker {
	t := &Ticker{stopc: make(chan struct{}), done: make(chan struct{})}
	t.mu.awake = map[*Replica]struct{}{}
	go t.run(interval)
	return t
}

func (t *Ticker) run(interval time.Duration) {
	defer close(t.done)
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-t.stopc:
			return
		case now := <-tk.C:
			t.mu.Lock()
			for r := range t.mu.awake {
				select {
				case r.tickc <- now:
				default:
				}
			}
			t.mu.Unlock()
		}
	}
}

// Awake is the number of replicas ticked.
func (t *Ticker) Awake() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mu.awake)
}

// set puts r on the list of replicas ticked, or takes it off.
func (t *Ticker) set(r *Replica, awake bool) {
	t.mu.Lock()
	if awake {
		t.mu.awake[r] = struct{}{}
	} else {
		delete(t.mu.awake, r)
	}
	t.mu.Unlock()
}

// Stop ends the ticker's goroutine.
func (t *Ticker) Stop() {
	t.stop.Do(func() { close(t.stopc) })
	<-t.done
}
