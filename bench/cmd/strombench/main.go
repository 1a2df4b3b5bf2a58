// Command strombench runs Strom's benchmark scenarios (package bench) and
// records them in bench/results/<YYYY-MM-DD>.md.
//
//	strombench                                   # every scenario, default sizes
//	strombench -scenario produce-1k-acks1,startup
//	strombench -smoke                            # seconds: does everything work?
//	strombench -list
//
// Run it from the repository (it builds cmd/strom, bench/cmd/kfakeserver
// and, for the scenarios with a NATS peer, bench/cmd/natsserver from there);
// `make bench` does.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stromhq/strom/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("strombench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	def := bench.DefaultConfig()
	var (
		scenario = fl.String("scenario", "all", "comma-separated scenarios to run, or all (see -list)")
		list     = fl.Bool("list", false, "list the scenarios and exit")
		smoke    = fl.Bool("smoke", false, "tiny sizes, a few seconds: checks that everything works; figures mean nothing and are not recorded")
		size     = fl.String("size", bench.FormatSize(def.Size), "consume-catchup, read-committed: bytes written, then read (1GiB, 64MiB, ...)")
		duration = fl.Duration("duration", def.Duration, "length of each timed produce")
		warmup   = fl.Duration("warmup", def.Warmup, "produce before each timed one, not counted")
		rounds   = fl.Int("rounds", def.Rounds, "produce measurements per broker; the median is reported")
		runs     = fl.Int("runs", def.Runs, "startup: broker starts timed; the median is reported")
		settle   = fl.Duration("settle", def.Settle, "idle-rss: wait from serving to reading the RSS")
		disk     = fl.String("disk-bytes", bench.FormatSize(def.DiskBytes), "bytes written by the raw disk measurement")
		syncs    = fl.Int("syncs", def.Syncs, "limits: appends+fdatasync timed for the group fsync and the sync latency limits")
		rate     = fl.Int("latency-rate", def.LatencyRate, "latency-*: records per second, 1 KiB each, for -warmup then -duration")
		idleP    = fl.Int("idle-partitions", def.IdlePartitions, "idle-1000-partitions: partitions created, 100 per topic")
		idleC    = fl.Int("idle-conns", def.IdleConns, "idle-1000-partitions: client connections held open")
		manyP    = fl.Int("create-partitions", def.ManyPartitions, "partitions-10k: partitions created, 100 per topic")
		metaReqs = fl.Int("metadata-requests", def.MetadataRequests, "partitions-10k, cluster-3: all-topics Metadata requests timed")
		clTopics = fl.Int("cluster-topics", def.ClusterTopics, "cluster-3: topics created through the metadata quorum, one per CreateTopics")
		idleRF3  = fl.Int("idle-rf3-partitions", def.IdleReplicated, "cluster-idle-rf3: partitions of replication factor 3 created, 100 per topic")
		idleWin  = fl.Duration("idle-window", def.IdleWindow, "cluster-idle-rf3: the window each broker's CPU time is measured over")
		failover = fl.Int("failovers", def.Failovers, "cluster-leader-failover: leaders of partition 0 killed; median and max reported")
		catchup  = fl.String("catchup-size", bench.FormatSize(def.CatchupSize), "cluster-follower-catchup: bytes written with acks=all while a follower is down")
		catchLag = fl.Duration("catchup-lag", 0, "cluster-follower-catchup: replica.lag.time.max.ms of the nodes (0: the broker's default, 30s); the follower stays down longer than it")
		restart  = fl.String("restart-size", bench.FormatSize(def.RestartSize), "restart-100-partitions: bytes written to 100 partitions before the restarts (needs that much free disk)")
		backlog  = fl.String("backlog-size", "", "backlog-rss: bytes behind the consumer (default: -restart-size, and then the same data is read, written once)")
		dir      = fl.String("dir", "", "where to make the run's directory of binaries, data dirs and logs (default: the system's temporary directory)")
		keep     = fl.Bool("keep", false, "keep the run's directory (binaries, broker logs) after the run")
		strom    = fl.String("strom", "", "strom binary to run (default: built from this tree)")
		kfake    = fl.String("kfake", "", "kfakeserver binary to run (default: built from this tree)")
		natsWin  = fl.Int("nats-pending", def.NatsPending, "NATS peers: each producer's async publish window (WithPublishAsyncMaxPending)")
		nats     = fl.String("nats", "", "natsserver binary to run (default: built from this tree when a scenario needs it)")
		results  = fl.String("results", "", `directory of the results files (default: bench/results of the repository; "-": do not record)`)
	)
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: strombench [flags]\n\nRuns Strom's benchmark scenarios and records them in bench/results/<date>.md.\n\n")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "strombench: unexpected arguments %q\n", fl.Args())
		return 2
	}
	if *list {
		for _, s := range bench.Scenarios() {
			fmt.Fprintf(stdout, "%-22s %s\n", s.Name, s.About)
		}
		return 0
	}
	chosen, err := bench.Select(*scenario)
	if err != nil {
		fmt.Fprintln(stderr, "strombench:", err)
		return 2
	}

	// -smoke changes the defaults; flags given explicitly still win.
	cfg := def
	if *smoke {
		cfg = bench.SmokeConfig()
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["size"] || !*smoke {
		if cfg.Size, err = bench.ParseSize(*size); err != nil {
			fmt.Fprintln(stderr, "strombench: -size:", err)
			return 2
		}
	}
	if set["disk-bytes"] || !*smoke {
		if cfg.DiskBytes, err = bench.ParseSize(*disk); err != nil {
			fmt.Fprintln(stderr, "strombench: -disk-bytes:", err)
			return 2
		}
	}
	if set["restart-size"] || !*smoke {
		if cfg.RestartSize, err = bench.ParseSize(*restart); err != nil {
			fmt.Fprintln(stderr, "strombench: -restart-size:", err)
			return 2
		}
	}
	if set["catchup-size"] || !*smoke {
		if cfg.CatchupSize, err = bench.ParseSize(*catchup); err != nil {
			fmt.Fprintln(stderr, "strombench: -catchup-size:", err)
			return 2
		}
	}
	if *backlog != "" {
		if cfg.BacklogSize, err = bench.ParseSize(*backlog); err != nil {
			fmt.Fprintln(stderr, "strombench: -backlog-size:", err)
			return 2
		}
	}
	for name, apply := range map[string]func(){
		"duration":            func() { cfg.Duration = *duration },
		"warmup":              func() { cfg.Warmup = *warmup },
		"rounds":              func() { cfg.Rounds = *rounds },
		"runs":                func() { cfg.Runs = *runs },
		"settle":              func() { cfg.Settle = *settle },
		"syncs":               func() { cfg.Syncs = *syncs },
		"nats-pending":        func() { cfg.NatsPending = *natsWin },
		"latency-rate":        func() { cfg.LatencyRate = *rate },
		"idle-partitions":     func() { cfg.IdlePartitions = *idleP },
		"idle-conns":          func() { cfg.IdleConns = *idleC },
		"create-partitions":   func() { cfg.ManyPartitions = *manyP },
		"metadata-requests":   func() { cfg.MetadataRequests = *metaReqs },
		"cluster-topics":      func() { cfg.ClusterTopics = *clTopics },
		"idle-rf3-partitions": func() { cfg.IdleReplicated = *idleRF3 },
		"idle-window":         func() { cfg.IdleWindow = *idleWin },
		"failovers":           func() { cfg.Failovers = *failover },
		"catchup-lag":         func() { cfg.CatchupLag = *catchLag },
	} {
		if set[name] || !*smoke {
			apply()
		}
	}
	cfg.Dir, cfg.Keep = *dir, *keep
	cfg.Strom.Path, cfg.Kfake.Path, cfg.Nats.Path = absOrEmpty(*strom), absOrEmpty(*kfake), absOrEmpty(*nats)
	cfg.Out = stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg, chosen)
	if err != nil {
		fmt.Fprintln(stderr, "strombench:", err)
		return 1
	}
	rep.Command = command(args)

	resultsDir := *results
	if resultsDir == "" && !*smoke {
		resultsDir = filepath.Join(rep.Config.Root, "bench", "results")
	}
	if resultsDir != "" && resultsDir != "-" {
		path, err := bench.WriteResults(resultsDir, rep)
		if err != nil {
			fmt.Fprintln(stderr, "strombench: results:", err)
			return 1
		}
		fmt.Fprintf(stdout, "# recorded in %s (took %v)\n", path, rep.Elapsed.Round(time.Second))
	}
	if err := rep.Err(); err != nil {
		fmt.Fprintln(stderr, "strombench: failed:", err)
		return 1
	}
	return 0
}

// command is how this run was started, as a reader of the results would
// type it again.
func command(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\*?;&|<>()") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		quoted[i] = a
	}
	flags := strings.Join(quoted, " ")
	prog := os.Args[0]
	switch {
	case os.Getenv("MAKELEVEL") != "" && flags == "":
		return "make bench"
	case os.Getenv("MAKELEVEL") != "":
		return "make bench BENCH_FLAGS='" + strings.ReplaceAll(flags, "'", `'\''`) + "'"
	case strings.Contains(prog, "go-build"):
		prog = "go run ./bench/cmd/strombench"
	}
	return strings.TrimSpace(prog + " " + flags)
}

func absOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
