// Package bufpool keeps large byte buffers for reuse between the two places
// a broker moves bulk bytes through memory: produce frames (read from a
// socket, dead once written to a segment) and fetch reads (read from a
// segment, dead once written to a socket). Without it each was a fresh
// allocation of up to several MiB, and the garbage collector's work grew
// with the traffic; with a consumer far behind, the heap grew to a few
// times one fetch.
//
// Invariants:
//   - Only a buffer's last user puts it back, and only when nothing else
//     can hold a slice of it: Put is called by the Kafka server after a
//     produce frame's Handle returned and after a fetch response was written,
//     never by storage or handlers.
//   - The Kafka server takes a buffer for a request frame only once the
//     whole frame is charged to its request budget, so no frame holds a
//     kept buffer the budget does not count.
//   - A buffer obtained here may be a fresh allocation or a reused one; its
//     bytes are unspecified until written (Get zeroes nothing).
//   - Buffers are kept by capacity class (powers of two, 64 KiB to 64 MiB);
//     smaller and larger ones are left to the garbage collector. sync.Pool
//     holds them, so idle buffers are freed after two garbage collections.
//   - Put and a Get that reuses allocate nothing: the *[]byte a pool keeps
//     a buffer behind is recycled too (TestPutGetAllocatesNothing).
//   - Race-detector builds overwrite a buffer when it is put back, so a use
//     after Put shows in tests as garbage, not as another client's data.
package bufpool
