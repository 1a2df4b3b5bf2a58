//go:build !unix

package broker

// openFileLimit knows no open-file limit here: nothing is derived from it.
func openFileLimit() (int64, error) { return 0, nil }
