//go:build !race

package server

const poisonReleasedFrames = false
