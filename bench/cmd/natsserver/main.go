// Command natsserver runs an embedded nats-server with JetStream on file
// storage, on 127.0.0.1, until it is signalled: the NATS peer that
// strombench measures Strom against, in a process of its own.
//
//	natsserver -port 4222 -store-dir /tmp/js              # JetStream's default sync interval
//	natsserver -port 4222 -store-dir /tmp/js -sync always # fsync after every write
package main

import (
	"context"
	"os"

	"github.com/stromhq/strom/bench/internal/natsserver"
)

func main() {
	os.Exit(natsserver.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
