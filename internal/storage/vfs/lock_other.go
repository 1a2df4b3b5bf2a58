//go:build !unix

package vfs

import (
	"errors"
	"io"
)

// Lock is not available here: Strom's data directory lock needs flock(2).
func (osFS) Lock(name string, owner []byte) (io.Closer, error) {
	return nil, errors.New("vfs: file locks are not supported on this platform")
}
