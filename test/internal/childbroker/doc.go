// Package childbroker lets a test binary be its own broker process: a test
// re-executes itself with an environment variable set and `-- serve ...`
// arguments, and its TestMain calls ServeIfChild first, which then runs
// `strom serve` instead of the tests. No separate build of cmd/strom is
// needed, and the broker can be killed (SIGKILL) without killing the test.
//
// Start does the re-execution and waits for the child's listeners; a Proc
// is stopped with Stop (SIGTERM, a clean exit required) or Kill (SIGKILL).
// Invariant: a Proc's exit status is read once by its waiter goroutine and
// put back by every reader, so Alive, Stop and Kill may follow each other
// in any order.
package childbroker
