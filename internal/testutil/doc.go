// Package testutil holds small helpers that tests in several packages need;
// nothing outside tests imports it.
package testutil
