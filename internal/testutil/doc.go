// Package testutil holds small helpers that tests in several packages and
// the benchmark harness (bench/) need; the broker and the CLI never import
// it.
package testutil
