// Package hostile holds tests of Strom under clients that mean harm or are
// broken: thousands of idle connections, slow-loris clients that trickle
// request bytes and never finish a frame, and a fuzzer that sends mutated
// and random frames on live sockets. In each, a well-behaved franz-go client
// works next to them, and the tests check what it sees (latency; every
// record once, in order) and what the broker spends (heap, connections).
//
// The package has no code of its own; everything is in its tests.
//
//   - TestIdleConnectionsAndSlowLoris runs the broker as a separate process
//     (the test binary re-executed as `strom serve`, see TestMain), so that
//     10,000 client sockets and 10,000 server sockets each fit in their
//     process's open-file limit. STROM_HOSTILE_IDLE sets the number of idle
//     connections (default 10,000).
//   - TestLiveSocketFuzz runs an in-process broker, so its heap can be
//     sampled. STROM_LIVE_FUZZ_DURATION sets how long the fuzzers send
//     (default 12s). Flexible-version frames are fuzzed in full when kmsg
//     decodes a forged tagged-field count in bounded time, which the test
//     checks at its start; with kmsg v1.15.0, which loops up to a minute
//     on one, the mutator first neutralises such counts (and nothing else).
//     STROM_LIVE_FUZZ_FLEXIBLE=1 forces full mutation, =0 the taming.
package hostile
