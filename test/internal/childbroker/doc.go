// Package childbroker lets a test binary be its own broker process: a test
// re-executes itself with an environment variable set and `-- serve ...`
// arguments, and its TestMain calls ServeIfChild first, which then runs
// `strom serve` instead of the tests. No separate build of cmd/strom is
// needed, and the broker can be killed (SIGKILL) without killing the test.
package childbroker
