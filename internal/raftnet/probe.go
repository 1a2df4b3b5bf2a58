package raftnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// Probes: does a peer's process answer now?
//
// A killed process's kernel closes its sockets one after another, the
// last opened first, so a client's connection to a killed broker can
// break a few milliseconds before the raft connections of that broker do:
// the client asks another broker for metadata in that gap, and that
// broker, which has seen nothing yet, names the dead leader (franz-go then
// asks again only after its metadata age, 5 s). A probe closes the gap:
// it asks the peer's process to answer on its own connection to this
// node; a live process does within a round trip, a dead one never does
// and its connections close within milliseconds (Connected turns false),
// a hung one does not answer before the caller's deadline.
//
//	probe body:     | kind=11 u8 | id u64 |  on this node's connection to the peer
//	probe ack body: | kind=12 u8 | id u64 |  on the peer's connection to this node

const (
	kindProbe    byte = 11
	kindProbeAck byte = 12
	probeBody         = 1 + 8
	// ctrlQueue bounds a peer's queue of probe frames; a probe that does
	// not fit is not sent (answered false), an ack that does not fit is
	// dropped (the prober's deadline ends its wait).
	ctrlQueue = 64
)

// probes are the probes waiting for their ack.
type probes struct {
	mu   sync.Mutex
	next uint64
	wait map[uint64]chan struct{}
}

func appendProbeFrame(dst []byte, kind byte, id uint64) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return sealFrame(dst, start)
}

// Probe asks node's process to answer and waits: true once it answered,
// false as soon as node is not Connected (its connections closed: it is
// gone), when ctx ends first, or when node is unknown or the transport
// closed. The answer comes on node's own connection to this one, so a
// true also says that node's writer reaches this node.
func (t *Transport) Probe(ctx context.Context, node int32) bool {
	p := t.peers[node]
	if p == nil || !t.Connected(node) {
		return false
	}
	ch := make(chan struct{})
	t.probes.mu.Lock()
	t.probes.next++
	id := t.probes.next
	t.probes.wait[id] = ch
	t.probes.mu.Unlock()
	defer func() {
		t.probes.mu.Lock()
		delete(t.probes.wait, id)
		t.probes.mu.Unlock()
	}()
	select {
	case p.ctrl <- appendProbeFrame(nil, kindProbe, id):
	default:
		return false
	}
	// The connections' close is read from the kernel (Connected), which
	// no goroutine is told of: checked every millisecond while waiting.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		case <-t.ctx.Done():
			return false
		case <-tick.C:
			if !t.Connected(node) {
				return false
			}
		}
	}
}

// probeFrame handles a probe or probe ack from node (its reader): a probe
// is answered on this node's connection to node, an ack ends its probe's
// wait. An error is a bad frame.
func (t *Transport) probeFrame(node int32, body []byte) error {
	if len(body) != probeBody {
		return fmt.Errorf("%w: probe frame of %d bytes", ErrBadFrame, len(body))
	}
	id := binary.BigEndian.Uint64(body[1:])
	if body[0] == kindProbe {
		if p := t.peers[node]; p != nil {
			select {
			case p.ctrl <- appendProbeFrame(nil, kindProbeAck, id):
			default:
			}
		}
		return nil
	}
	t.probes.mu.Lock()
	ch := t.probes.wait[id]
	delete(t.probes.wait, id)
	t.probes.mu.Unlock()
	if ch != nil {
		close(ch)
	}
	return nil
}
