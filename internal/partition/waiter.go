package partition

// Waiter wakes a long poll (a Fetch waiting for MinBytes) when one of the
// partitions it watches changes: new readable records, or a start offset
// moved by DeleteRecords. One Waiter serves every partition of a fetch, so
// a fetch of N partitions waits on one channel, not N.
//
// Use: NewWaiter, Watch each partition before reading it (a change after
// the read then cannot be missed), read, and wait on C when there was too
// little; read again after each wake-up; Stop when done. A wake-up may be
// spurious (a change the fetch does not care about); C never blocks a
// writer.
type Waiter struct {
	c     chan struct{}
	parts []*Partition
}

// NewWaiter returns a Waiter that watches nothing yet.
func NewWaiter() *Waiter { return &Waiter{c: make(chan struct{}, 1)} }

// Watch adds p to what w watches.
func (w *Waiter) Watch(p *Partition) {
	p.wmu.Lock()
	if p.waiters == nil {
		p.waiters = map[*Waiter]struct{}{}
	}
	p.waiters[w] = struct{}{}
	p.wmu.Unlock()
	w.parts = append(w.parts, p)
}

// C receives a value after a watched partition changed.
func (w *Waiter) C() <-chan struct{} { return w.c }

// Stop unregisters w from every partition it watches. It must be called
// once the long poll is over.
func (w *Waiter) Stop() {
	for _, p := range w.parts {
		p.wmu.Lock()
		delete(p.waiters, w)
		p.wmu.Unlock()
	}
	w.parts = nil
}

// notify wakes every Waiter watching p.
func (p *Partition) notify() {
	p.wmu.Lock()
	for w := range p.waiters {
		select {
		case w.c <- struct{}{}:
		default: // already woken, not yet drained
		}
	}
	p.wmu.Unlock()
}
