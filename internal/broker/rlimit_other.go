//go:build !unix

package broker

// raiseFileLimit knows no open-file limit here: nothing is derived from it.
func raiseFileLimit() (int64, error) { return 0, nil }
