// Package kfakeserver runs franz-go's in-memory fake broker, kfake, as a
// program of its own. The harness drives it across a loopback socket from
// another process, exactly as it drives `strom serve`, so that neither
// broker shares a process (and its CPU accounting, GC and scheduler) with
// the client.
package kfakeserver

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Main runs one kfake broker on 127.0.0.1 until SIGINT or SIGTERM and
// returns the exit code. It prints the listening address on stdout once the
// broker accepts connections.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfakeserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 0, "port on 127.0.0.1 to listen on (0: any free port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kfakeserver: unexpected arguments %q\n", fs.Args())
		return 2
	}
	// Notify before listening, so that a signal sent as soon as the port
	// answers is not lost.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(*port))
	if err != nil {
		fmt.Fprintln(stderr, "kfakeserver:", err)
		return 1
	}
	fmt.Fprintf(stdout, "kfakeserver: kafka listening on %s\n", c.ListenAddrs()[0])
	<-ctx.Done()
	c.Close()
	fmt.Fprintln(stdout, "kfakeserver: stopped")
	return 0
}
