package group

import "sync"

// mailbox is a group's actor loop: closures posted to it run one at a time,
// in the order posted, so a group's state needs no lock. No goroutine waits
// on an idle group: the first post starts one, and it exits once the queue
// is empty (a group costs nothing while nobody talks to it). post never
// blocks, so timers, fsync waiters and other groups can always post.
type mailbox struct {
	mu      sync.Mutex
	q       []func()
	running bool
	closed  bool
	wg      *sync.WaitGroup // the coordinator's: Close waits for runners
}

// post queues fn; it reports false (and drops fn) once the mailbox is closed.
func (m *mailbox) post(fn func()) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.q = append(m.q, fn)
	if !m.running {
		m.running = true
		m.wg.Add(1)
		go m.run()
	}
	m.mu.Unlock()
	return true
}

func (m *mailbox) run() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		q := m.q
		m.q = nil
		if len(q) == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		for _, fn := range q {
			fn()
		}
	}
}

// close stops accepting closures; those already queued still run.
func (m *mailbox) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}
