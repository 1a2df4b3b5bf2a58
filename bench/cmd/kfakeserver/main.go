// Command kfakeserver runs franz-go's in-memory fake broker (kfake) on
// 127.0.0.1 until it is signalled: the peer that strombench measures Strom
// against, in a process of its own.
//
//	kfakeserver -port 19092
package main

import (
	"context"
	"os"

	"github.com/stromhq/strom/bench/internal/kfakeserver"
)

func main() {
	os.Exit(kfakeserver.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
