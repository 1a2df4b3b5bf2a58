// Package natsserver runs an embedded nats-server with JetStream on file
// storage as a program of its own: the NATS peer that strombench measures
// Strom's produce path against. Like kfakeserver it is driven across a
// loopback socket from the harness's process, never in it.
package natsserver

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Sync modes, the values of -sync.
const (
	// SyncDefault is JetStream's own default: writes go to the page cache
	// and the file store fsyncs on its sync_interval (two minutes), as a
	// default deployment does.
	SyncDefault = "default"
	// SyncAlways is `sync_interval: always` (server.Options.SyncAlways):
	// the file store fsyncs after every write, before it acknowledges.
	SyncAlways = "always"
)

// readyTimeout bounds the wait for the server's listener.
const readyTimeout = 30 * time.Second

// Main runs one nats-server with JetStream on 127.0.0.1 until SIGINT or
// SIGTERM, then shuts it down (flushing its stores) and returns the exit
// code. It prints the client address on stdout once it accepts connections.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("natsserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 0, "port on 127.0.0.1 to listen on (0: any free port)")
	storeDir := fs.String("store-dir", "", "JetStream's file storage directory (required)")
	sync := fs.String("sync", SyncDefault, `when the file store fsyncs: "default" (its sync_interval) or "always" (after every write)`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "natsserver: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *storeDir == "" {
		fmt.Fprintln(stderr, "natsserver: -store-dir is required")
		return 2
	}
	opts := &server.Options{
		ServerName: "strombench",
		Host:       "127.0.0.1",
		Port:       *port,
		JetStream:  true,
		StoreDir:   *storeDir,
		// The signals are ours: a SIGTERM is a clean shutdown.
		NoSigs: true,
	}
	if *port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	switch *sync {
	case SyncDefault:
	case SyncAlways:
		opts.SyncAlways = true
	default:
		fmt.Fprintf(stderr, "natsserver: -sync %q: want %q or %q\n", *sync, SyncDefault, SyncAlways)
		return 2
	}
	// Notify before listening, so that a signal sent as soon as the port
	// answers is not lost.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(stderr, "natsserver:", err)
		return 1
	}
	s.ConfigureLogger()
	s.Start()
	if !s.ReadyForConnections(readyTimeout) {
		s.Shutdown()
		fmt.Fprintf(stderr, "natsserver: not accepting connections after %v\n", readyTimeout)
		return 1
	}
	fmt.Fprintf(stdout, "natsserver: nats listening on %s, JetStream in %s, sync %s\n", s.ClientURL(), *storeDir, *sync)
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	fmt.Fprintln(stdout, "natsserver: stopped")
	return 0
}
