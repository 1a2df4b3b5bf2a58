// Package crash breaks a broker the ways production does and checks what
// a broker must never do: lose an acknowledged record or commit, store a
// record twice, or move a record to another offset.
//
//   - TestKillDuringAcksAllProduce and TestKillDuringOffsetCommits kill a
//     real broker process with SIGKILL under idempotent acks=all producers
//     and a committing consumer group member, and restart it. The broker
//     is this test binary re-executed as `strom serve` (see TestMain), so
//     no separate build is needed.
//   - TestLostResponsesNoDuplicates and
//     TestDelayedAndDroppedResponsesNoDuplicates put a proxy between the
//     producers and the broker that resets, delays and black-holes
//     connections, so that retried requests meet their first writes.
//   - TestPowerLossAtRandomPoints runs the broker in-process on a
//     memfs.FS and restarts it on what a power loss would leave.
//   - TestKillDuringCompaction kills the broker while the log cleaner
//     compacts a topic being updated, and checks every key's latest value.
//   - TestKillDuringTransactions kills the broker process under franz-go
//     consume-transform-produce pipelines (GroupTransactSession) and
//     checks the output holds every input record exactly once.
//
// STROM_CRASH_CYCLES, STROM_CRASH_COMMIT_CYCLES, STROM_CRASH_COMPACT_CYCLES,
// STROM_CRASH_TXN_CYCLES and STROM_POWERLOSS_CUTS set the number of kills
// and cuts (defaults 20, 8, 8, 6 and 20; `make crash` runs 1,000, 200, the
// default, 50 and 1,000).
package crash

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/test/internal/childbroker"
)

const childEnv = "STROM_CRASH_CHILD"

func TestMain(m *testing.M) {
	childbroker.ServeIfChild(childEnv) // the broker process: strom serve
	os.Exit(m.Run())
}

// startBroker starts the broker process on dir, listening on addr.
func startBroker(t *testing.T, dir, addr string) *childbroker.Proc {
	t.Helper()
	return childbroker.Start(t, childEnv, []string{addr},
		"--data-dir", dir, "--kafka-addr", addr, "--advertised-addr", addr, "--http-addr", "-", "--log-level", "warn")
}

func TestKillDuringAcksAllProduce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles take a while")
	}
	cycles := envInt(t, "STROM_CRASH_CYCLES", 20)
	const producers, partitions, topic = 16, 8, "crash"
	dir, addr := t.TempDir(), childbroker.FreeAddr(t)
	b := startBroker(t, dir, addr)
	createTopic(t, addr, topic, partitions)

	ps := startProducers(t, produceConfig{addr: addr, topic: topic, prefix: "p", n: producers, pace: 64, failuresOK: true,
		opts: []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond })}})
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for c := 0; c < cycles; c++ {
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond) // let them write: the kill lands at a random moment
		b.Kill(t)
		b = startBroker(t, dir, addr)
	}
	ps.stop()
	defer b.Stop(t)

	t.Logf("%d kills: %v", cycles, ps.verify(t, addr))
}
