//go:build race

package bufpool

// poison: race-detector builds (make test) overwrite a buffer put back.
const poison = true
