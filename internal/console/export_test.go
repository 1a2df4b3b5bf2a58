package console

import "time"

// Test-only views of unexported types and state, for the external test
// package (console_test), which must be external because it starts a
// broker and the broker imports this package.

type (
	ClusterJSON        = clusterJSON
	BrokerJSON         = brokerJSON
	TopicJSON          = topicJSON
	TopicDetailJSON    = topicDetailJSON
	ConfigJSON         = configJSON
	PagePartitionJSON  = pagePartitionJSON
	DeliveryJSON       = deliveryJSON
	StatsJSON          = statsJSON
	StreamStats        = streamStats
	ClusterStatusJSON  = clusterStatusJSON
	TransactionsJSON   = transactionsJSON
	TransactionJSON    = transactionJSON
	TopicProducersJSON = topicProducersJSON
	ProducerJSON       = producerJSON
	TopicCleanerJSON   = topicCleanerJSON
)

// OpenStreams returns the queue stats of the streams open now.
func (c *Console) OpenStreams() []StreamStats { return c.openStreams() }

// Brokers returns the seed brokers the console was given.
func (c *Console) Brokers() []string { return c.cfg.Brokers }

// StreamsAdmitted returns how many streams hold one of the MaxStreams
// slots (a stream leaves OpenStreams before it gives its slot back).
func (c *Console) StreamsAdmitted() int {
	c.life.Lock()
	defer c.life.Unlock()
	return len(c.life.admitted)
}

// ProduceBudget returns the produce bytes held now and the most held at
// once so far.
func (c *Console) ProduceBudget() (used, peak int64) {
	used, peak, _ = c.produceBudget.stats()
	return used, peak
}

// ProduceWaiting returns the produce requests waiting for budget.
func (c *Console) ProduceWaiting() int {
	_, _, n := c.produceBudget.stats()
	return n
}

func (s *stream) stats() streamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return streamStats{Queued: s.mu.n, MaxQueued: s.mu.maxQueued, MaxBytes: s.mu.maxBytes, Dropped: s.mu.total, Sent: s.mu.sent}
}

// openStreams returns the stats of the streams open now (for tests).
func (c *Console) openStreams() []streamStats {
	c.life.Lock()
	defer c.life.Unlock()
	var out []streamStats
	for s := range c.life.open {
		out = append(out, s.stats())
	}
	return out
}

// stats returns the bytes held now, the most held at once so far, and the
// requests waiting.
func (b *byteBudget) stats() (used, peak int64, waiting int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.used, b.mu.peak, len(b.mu.waiters)
}

// Sessions returns how many sessions and API tokens are live.
func (c *Console) Sessions() int {
	return len(c.sessions.list(func(*session) bool { return true }))
}

// SetDTRecheck sets how often cached delegation-token logins are checked,
// for a test; the returned func restores it.
func SetDTRecheck(d time.Duration) func() {
	old := dtRecheck
	dtRecheck = d
	return func() { dtRecheck = old }
}
