package broker

import "github.com/stromhq/strom/internal/coordinator/txn"

// Txns exposes the transaction coordinator (for tests and the console).
func (b *Broker) Txns() *txn.Coordinator { return b.txns }
