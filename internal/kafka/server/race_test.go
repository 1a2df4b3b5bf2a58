//go:build race

package server

// raceBuild: sync.Pool drops a share of what is put back under the race
// detector, so allocation counts mean nothing there.
const raceBuild = true
