//go:build !linux

package server

import (
	"errors"
	"net"
)

var errNoSendfile = errors.New("sendfile not available")

func sendFile(*net.TCPConn, *FileRecords) (int64, error) { return 0, errNoSendfile }
