package raftnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/bufpool"
)

// Snapshot streams: a raft snapshot whose payload is too large for a
// frame (a compacted partition's region below its anchor, gigabytes
// perhaps) travels on a connection of its own, dialled for it with the
// same handshake as the batches' (so only an authenticated peer can send
// one), so that heartbeats and appends never wait behind it (etcd's
// rafthttp sends its snapshots apart for the same reason). The payload is
// opaque here: the sender's ChunkSource yields chunks, the receiver's
// ChunkSink takes them (Config.SnapshotSink); neither side holds more than
// a frame. See the package doc.

// Frame kinds of a snapshot stream.
const (
	kindSnapHeader byte = 7
	kindSnapChunk  byte = 8
	kindSnapEnd    byte = 9
	kindSnapAck    byte = 10
)

// DefaultSnapshotTimeout is Config.SnapshotTimeout's default.
const DefaultSnapshotTimeout = time.Minute

// DefaultMaxSnapshotStreams is Config.MaxSnapshotStreams's default.
const DefaultMaxSnapshotStreams = 4

// ChunkSource is the sending side's payload of a snapshot stream: Next
// returns the next chunk (valid until the next call; at most MaxFrame-1
// bytes) or io.EOF after the last; Close is called once the stream ends,
// however it ends.
type ChunkSource interface {
	Next() ([]byte, error)
	Close()
}

// ChunkSink is the receiving side's: Write takes each chunk in order (the
// chunk is valid only during the call), Commit is called once the stream
// ended with its length and CRC checked, before the snapshot message is
// delivered, Abort when it failed. After Commit or Abort nothing is
// called.
type ChunkSink interface {
	Write(chunk []byte) error
	Commit() error
	Abort()
}

// ErrSnapshotRefused: the receiver refused or failed a snapshot stream
// (its ack's reason follows).
var ErrSnapshotRefused = errors.New("raftnet: snapshot stream refused")

// SendSnapshot sends m, a MsgSnap of group, to the node of raft id m.To on
// a connection of its own, followed by src's chunks, and calls done (on
// another goroutine, never on the caller's) with nil once the receiver
// acknowledged the whole stream (its sink committed and m delivered), or
// with why it failed. It returns at once. Close ends a running stream
// (done gets an error).
func (t *Transport) SendSnapshot(group uint64, m *raftpb.Message, src ChunkSource, done func(error)) {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		go func() { src.Close(); done(net.ErrClosed) }()
		return
	}
	t.wg.Add(1)
	t.mu.Unlock()
	m = proto.CloneOf(m)
	go func() {
		defer t.wg.Done()
		// Each stream holds a few chunks in memory: a node that must
		// send many (a replaced broker's compacted partitions) sends
		// MaxSnapshotStreams at a time, the others wait their turn.
		t.snapQueued.Add(1)
		select {
		case t.snapSlots <- struct{}{}:
			t.snapQueued.Add(-1)
		case <-t.ctx.Done():
			t.snapQueued.Add(-1)
			src.Close()
			t.snapFailed.Add(1)
			done(net.ErrClosed)
			return
		}
		err := t.sendSnapshot(group, m, src)
		<-t.snapSlots
		src.Close()
		if err != nil {
			t.snapFailed.Add(1)
		} else {
			t.snapSent.Add(1)
		}
		done(err)
	}()
}

func (t *Transport) sendSnapshot(group uint64, m *raftpb.Message, src ChunkSource) error {
	p := t.peers[int32(m.GetTo()-1)]
	if p == nil || m.GetTo() == 0 || m.GetType() != raftpb.MsgSnap {
		return fmt.Errorf("raftnet: snapshot of group %d to raft id %d: not a MsgSnap to a peer", group, m.GetTo())
	}
	head, err := appendSnapHeader(nil, group, m)
	if err != nil {
		return err
	}
	if len(head) > t.cfg.MaxFrame+4 {
		return fmt.Errorf("raftnet: snapshot message of %d bytes over the frame limit", len(head))
	}
	c, err := t.dial(p)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(t.ctx, func() { c.Close() })
	defer stop()
	write := func(b []byte) error {
		c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		_, err := c.Write(b)
		return err
	}
	if err := write(head); err != nil {
		return fmt.Errorf("raftnet: snapshot to node %d: %w", p.node, err)
	}
	var (
		buf   []byte
		total uint64
		crc   uint32
	)
	for {
		chunk, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("raftnet: snapshot to node %d: read: %w", p.node, err)
		}
		if len(chunk)+1+frameHeader > t.cfg.MaxFrame+4 {
			return fmt.Errorf("raftnet: snapshot to node %d: a chunk of %d bytes over the frame limit", p.node, len(chunk))
		}
		buf = appendSnapChunk(buf[:0], chunk)
		if err := write(buf); err != nil {
			return fmt.Errorf("raftnet: snapshot to node %d: %w", p.node, err)
		}
		total += uint64(len(chunk))
		crc = crc32.Update(crc, castagnoli, chunk)
	}
	if err := write(appendSnapEnd(buf[:0], total, crc)); err != nil {
		return fmt.Errorf("raftnet: snapshot to node %d: %w", p.node, err)
	}
	// The receiver answers once its sink committed (an fsync) and the
	// message was delivered.
	c.SetReadDeadline(time.Now().Add(t.cfg.SnapshotTimeout))
	body, err := readFrame(c, handshakeMaxFrame)
	if err != nil {
		return fmt.Errorf("raftnet: snapshot to node %d: no answer: %w", p.node, err)
	}
	defer bufpool.Put(body)
	v, err := decodeSnapAck(body)
	if err != nil {
		return fmt.Errorf("raftnet: snapshot to node %d: %w", p.node, err)
	}
	if v.Code != verdictAccepted {
		return fmt.Errorf("%w by node %d: %s", ErrSnapshotRefused, p.node, v.Reason)
	}
	return nil
}

// receiveSnapshot serves an accepted connection whose first frame after
// the handshake is a snapshot header (head): chunks go to the sink
// Config.SnapshotSink gives, and once the end frame's length and CRC
// match, the sink commits, the message is delivered, and the sender gets
// an ack. Every frame must come within SnapshotTimeout. The connection
// carries one stream and is closed after it.
func (t *Transport) receiveSnapshot(node int32, c net.Conn, r io.Reader, ic *inConn, head []byte) {
	group, m, err := decodeSnapHeader(head)
	if err == nil && (m.GetType() != raftpb.MsgSnap || m.GetFrom() != uint64(node)+1) {
		// Only the authenticated node's own snapshots.
		err = fmt.Errorf("%w: snapshot stream of a %s from raft id %d on node %d's connection", ErrBadFrame, m.GetType(), m.GetFrom(), node)
	}
	if err != nil {
		t.badFrames.Add(1)
		t.log.Warn("raftnet: closing a connection", "peer_node", node, "err", err)
		return
	}
	refuse := func(err error) {
		t.snapRefused.Add(1)
		t.log.Warn("raftnet: refused a snapshot stream", "peer_node", node, "group", group, "err", err)
		c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		c.Write(appendSnapAck(nil, verdict{Code: verdictRefused, Reason: err.Error()}))
	}
	if t.cfg.SnapshotSink == nil {
		refuse(errors.New("this node takes no snapshot streams"))
		return
	}
	sink, err := t.cfg.SnapshotSink(group, m)
	if err != nil {
		refuse(err)
		return
	}
	var (
		total uint64
		crc   uint32
	)
	for {
		c.SetReadDeadline(time.Now().Add(t.cfg.SnapshotTimeout))
		body, err := readFrame(r, t.cfg.MaxFrame)
		if err != nil {
			sink.Abort()
			if errors.Is(err, ErrBadFrame) {
				t.badFrames.Add(1)
				t.log.Warn("raftnet: closing a snapshot stream", "peer_node", node, "group", group, "err", err)
			} else {
				t.log.Info("raftnet: a snapshot stream broke off", "peer_node", node, "group", group, "err", err)
			}
			return
		}
		ic.active()
		kind := body[0]
		switch {
		case kind == kindSnapChunk:
			chunk := body[1:]
			total += uint64(len(chunk))
			crc = crc32.Update(crc, castagnoli, chunk)
			err = sink.Write(chunk)
			bufpool.Put(body)
			if err != nil {
				sink.Abort()
				refuse(err)
				return
			}
		case kind == kindSnapEnd && len(body) == 1+8+4:
			wantTotal, wantCRC := binary.BigEndian.Uint64(body[1:]), binary.BigEndian.Uint32(body[9:])
			bufpool.Put(body)
			if wantTotal != total || wantCRC != crc {
				sink.Abort()
				refuse(fmt.Errorf("%w: snapshot stream of %d bytes crc %08x, its end says %d bytes crc %08x", ErrBadFrame, total, crc, wantTotal, wantCRC))
				return
			}
			if err := sink.Commit(); err != nil {
				refuse(err)
				return
			}
			t.delivered.Add(1)
			t.snapReceived.Add(1)
			t.cfg.Deliver(group, m)
			c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
			c.Write(appendSnapAck(nil, verdict{Code: verdictAccepted}))
			return
		default:
			bufpool.Put(body)
			sink.Abort()
			t.badFrames.Add(1)
			t.log.Warn("raftnet: closing a snapshot stream: unexpected frame", "peer_node", node, "group", group, "kind", kind)
			return
		}
	}
}

// appendSnapHeader appends the frame that opens a snapshot stream.
func appendSnapHeader(dst []byte, group uint64, m *raftpb.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindSnapHeader)
	dst = binary.BigEndian.AppendUint64(dst, group)
	dst, err := proto.MarshalOptions{}.MarshalAppend(dst, m)
	if err != nil {
		return nil, fmt.Errorf("raftnet: marshal a snapshot message: %w", err)
	}
	return sealFrame(dst, start), nil
}

func decodeSnapHeader(body []byte) (uint64, *raftpb.Message, error) {
	if len(body) < 9 || body[0] != kindSnapHeader {
		return 0, nil, fmt.Errorf("%w: not a snapshot header", ErrBadFrame)
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(body[9:], m); err != nil {
		return 0, nil, fmt.Errorf("%w: snapshot message: %v", ErrBadFrame, err)
	}
	return binary.BigEndian.Uint64(body[1:]), m, nil
}

func appendSnapChunk(dst []byte, chunk []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindSnapChunk)
	dst = append(dst, chunk...)
	return sealFrame(dst, start)
}

func appendSnapEnd(dst []byte, total uint64, crc uint32) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindSnapEnd)
	dst = binary.BigEndian.AppendUint64(dst, total)
	dst = binary.BigEndian.AppendUint32(dst, crc)
	return sealFrame(dst, start)
}

// appendSnapAck is a verdict frame of kind kindSnapAck.
func appendSnapAck(dst []byte, v verdict) []byte {
	b := appendVerdict(dst, v)
	b[len(dst)+frameHeader] = kindSnapAck
	return sealFrame(b, len(dst))
}

func decodeSnapAck(body []byte) (verdict, error) {
	if len(body) == 0 || body[0] != kindSnapAck {
		return verdict{}, fmt.Errorf("%w: not a snapshot ack", ErrBadFrame)
	}
	b := append([]byte{kindVerdict}, body[1:]...)
	return decodeVerdict(b)
}
