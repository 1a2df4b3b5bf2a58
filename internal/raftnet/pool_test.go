package raftnet

import (
	"bytes"
	"net"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// Frames and marshalled messages are pooled buffers (bufpool; poisoned
// when put back under the race detector): a delivered message must own
// its entries' Data (not alias the frame it came in, which the reader puts
// back), and the sender may reuse its message's Data as soon as Send
// returns. Each entry here is larger than bufpool's smallest class, so its
// frame and marshalled copy come from the pool and go back to it.
func TestDeliveredMessagesOutliveTheirFrames(t *testing.T) {
	noLeak(t)
	var mu sync.Mutex
	var got []*raftpb.Message
	keep := func(_ uint64, m *raftpb.Message) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
	}
	lns := []net.Listener{listen(t, ""), listen(t, "")}
	peers := map[int32]string{0: lns[0].Addr().String(), 1: lns[1].Addr().String()}
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: lns[0], Peers: peers, QueueSize: 64})
	start(t, Config{NodeID: 1, ClusterID: "c", Listener: lns[1], Peers: peers, QueueSize: 64, Deliver: keep})
	const n, size = 24, 100 << 10
	data := make([]byte, size)
	for i := 1; i <= n; i++ {
		for k := range data {
			data[k] = byte(i)
		}
		a.Send(1, msg(0, 1, uint64(i), data))
		// The sender reuses its buffer at once (the next message's fill).
		waitFor(t, "delivery", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == i
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for i, m := range got {
		want := bytes.Repeat([]byte{byte(i + 1)}, size)
		if m.GetIndex() != uint64(i+1) || len(m.GetEntries()) != 1 || !bytes.Equal(m.GetEntries()[0].GetData(), want) {
			t.Fatalf("message %d changed after its delivery (index %d)", i+1, m.GetIndex())
		}
	}
}
