//go:build race

package server

// poisonReleasedFrames: race-detector builds (make test) overwrite a frame
// given back to the pool, so a handler that keeps produce bytes past Handle
// sees garbage in tests instead of another client's data in production.
const poisonReleasedFrames = true
