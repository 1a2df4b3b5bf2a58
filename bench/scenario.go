package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Scenario is one named benchmark. Run reports its figures and notes
// through the Env as it measures them; an error ends the scenario, keeping
// what it reported so far, and the run goes on with the next one.
type Scenario struct {
	Name  string
	About string // one line: what is measured against what
	Run   func(ctx context.Context, e *Env) error
}

// scenarios is every scenario, in the order "all" runs them.
var scenarios = []Scenario{
	{
		Name:  "limits",
		About: "this machine's limits, measured first for the scenarios after it: disk sequential write, group fsync (64 KiB per fdatasync), 4 KiB append+fdatasync latency, parallel group fsync (8 files, 1 MiB appends), loopback TCP",
		Run:   runLimitsScenario,
	},
	{
		Name:  "produce-1k-acks1",
		About: "4 franz-go producers, 1 KiB records, acks=1, 8 partitions: Strom against kfake, NATS JetStream async publish (default sync) and the disk's sequential write",
		Run:   runProduce1kAcks1,
	},
	{
		Name:  "produce-1k-acksall",
		About: "16 idempotent franz-go producers, 1 KiB records, acks=all (fsynced, group commit), 8 partitions: Strom against parallel group-fsync bandwidth, NATS JetStream fsyncing every write and NATS on its default sync interval",
		Run:   runProduce1kAcksAll,
	},
	{
		Name:  "produce-1k-snappy",
		About: "4 franz-go producers, 1 KiB JSON records compressed with snappy (franz-go's default), acks=1, 8 partitions: Strom against kfake, broker CPU and allocations per MB",
		Run:   runProduce1kSnappy,
	},
	{
		Name:  "produce-1k-lz4",
		About: "produce-1k-snappy with lz4",
		Run:   runProduce1kLZ4,
	},
	{
		Name:  "produce-1k-zstd",
		About: "produce-1k-snappy with zstd",
		Run:   runProduce1kZstd,
	},
	{
		Name:  "produce-100b",
		About: "4 franz-go producers, 100-byte records, acks=1, batched, 8 partitions: Strom's records/s against 1,000,000, kfake alongside",
		Run:   runProduce100b,
	},
	{
		Name:  "produce-1k-sasl-ssl",
		About: "produce-1k-acks1's workload through the PLAINTEXT and the SASL_SSL (TLS, SCRAM-SHA-512) listener of one strom serve: SASL_SSL's MB/s against PLAINTEXT's (goal >= 0.7x with AES-GCM), then new SCRAM connections per second, 1 and 4 at a time",
		Run:   runProduceSASLSSL,
	},
	{
		Name:  "txn-1mib",
		About: "one franz-go producer, 1 KiB records to 8 partitions: transactional committing every 1 MiB against idempotent (acks=all) flushing every 1 MiB, a fresh broker each, rounds rotated (goal >= 0.8x)",
		Run:   runTxn1MiB,
	},
	{
		Name:  "txn-small",
		About: "transactions per second of one franz-go transactional producer, 1 record to each of 10 partitions per transaction",
		Run:   runTxnSmall,
	},
	{
		Name:  "read-committed",
		About: "one consumer reading -size bytes written in 1 MiB transactions (every fourth aborted) from the start: read_committed MB/s against read_uncommitted over the same log",
		Run:   runReadCommitted,
	},
	{
		Name:  "consume-catchup",
		About: "catch-up read of -size bytes from 8 partitions, no group: Strom against a raw loopback TCP copy",
		Run:   runConsumeCatchup,
	},
	{
		Name:  "idle-rss",
		About: "resident memory of strom serve on an empty data dir, idle: against a 30 MiB limit",
		Run:   runIdleRSS,
	},
	{
		Name:  "startup",
		About: "exec of strom serve to its first ApiVersions+Metadata answer, empty data dir, median: against a 100 ms limit",
		Run:   runStartup,
	},
	{
		Name:  "latency-acks1",
		About: "end-to-end and produce latency at a steady -latency-rate of 1 KiB records, acks=1, 8 partitions: Strom against 5 ms / 3 ms p99 limits, kfake beside it",
		Run:   runLatencyAcks1,
	},
	{
		Name:  "latency-acksall",
		About: "latency-acks1 at acks=all: against this disk's 4 KiB append+fdatasync p99 plus 3 ms (produce) and 5 ms (end-to-end)",
		Run:   runLatencyAcksAll,
	},
	{
		Name:  "idle-1000-partitions",
		About: "resident memory of strom serve holding -idle-partitions partitions and -idle-conns open client connections, idle: against a 150 MiB limit",
		Run:   runIdlePartitions,
	},
	{
		Name:  "partitions-10k",
		About: "creating -create-partitions partitions through CreateTopics (limit 10 s), then all-topics Metadata latency (p99 limit 20 ms)",
		Run:   runPartitions10k,
	},
	{
		Name:  "cluster-3",
		About: "three strom nodes on this machine as one cluster: -cluster-topics topic creations through the metadata quorum (records/s), all-topics Metadata p99 with -create-partitions partitions on the 3 nodes (limit 20 ms), controller failover (kill -9 to the next accepted metadata change, median of -runs)",
		Run:   runCluster3,
	},
	{
		Name:  "cluster-idle-rf3",
		About: "three strom nodes as one cluster holding -idle-rf3-partitions idle partitions of replication factor 3: CPU of each broker over -idle-window, as % of a core (goal < 5%)",
		Run:   runClusterIdleRF3,
	},
	{
		Name:  "cluster-produce-rf3",
		About: "produce-1k-acksall's workload on three strom nodes with an RF=3 topic against one strom serve with RF=1, rounds alternated: MB/s ratio (goal >= 0.5x) and the brokers' CPU per MB",
		Run:   runClusterProduceRF3,
	},
	{
		Name:  "cluster-latency-rf3",
		About: "latency-acksall's paced workload (-latency-rate records/s of 1 KiB, acks=all) on three strom nodes with an RF=3 topic, rounds alternated with one strom serve (RF=1): produce p50/p99 (goal p99 <= 10 ms) and end-to-end",
		Run:   runClusterLatencyRF3,
	},
	{
		Name:  "cluster-leader-failover",
		About: "three strom nodes, an RF=3 topic under two paced acks=all producers: kill -9 of partition 0's leader to the first acknowledgement on it, -failovers times, median (goal <= 2 s) and max, with kgo.MetadataMinAge(250ms) and with the default; every acknowledged record read back",
		Run:   runClusterLeaderFailover,
	},
	{
		Name:  "cluster-follower-catchup",
		About: "three strom nodes, an RF=3 topic of 8 partitions: a follower killed, -catchup-size written with acks=all, the follower restarted: its catch-up MB/s to a full ISR, its CPU, and a paced acks=all producer's p50/p99 during the catch-up against before",
		Run:   runClusterFollowerCatchup,
	},
	{
		Name:  "restart-100-partitions",
		About: "exec of strom serve to serving again on -restart-size bytes in 100 partitions after a clean stop, median, end offsets checked: against a 1 s limit",
		Run:   runRestart,
	},
	{
		Name:  "restart-after-kill",
		About: "exec of strom serve to serving again after SIGKILL of a broker that just wrote -restart-size bytes in 100 partitions (acks=1), end offsets checked: against a 1 s limit; then once more with the data dir evicted from the page cache (cold, as after a reboot)",
		Run:   runRestartAfterKill,
	},
	{
		Name:  "compaction",
		About: "the log cleaner on -size bytes of 1 KiB keyed records with 10% live keys, MB/s read from its own counters, as a ratio of the disk reading and writing the same bytes",
		Run:   runCompaction,
	},
	{
		Name:  "backlog-rss",
		About: "resident memory of strom serve while one consumer reads a -backlog-size backlog from the start: peak within 64 MiB of before the read",
		Run:   runBacklogRSS,
	},
}

// Scenarios returns every scenario, in the order "all" runs them.
func Scenarios() []Scenario { return append([]Scenario(nil), scenarios...) }

// Select returns the scenarios named in a comma-separated list, in the
// list's order; "all" (or "") is every scenario.
func Select(list string) ([]Scenario, error) {
	if list == "" || list == "all" {
		return Scenarios(), nil
	}
	var out []Scenario
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range scenarios {
			if s.Name == name {
				out, found = append(out, s), true
				break
			}
		}
		if !found {
			var names []string
			for _, s := range scenarios {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("no scenario %q; there are: %s", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// Config is what a run measures and how much.
type Config struct {
	// Root is the module's directory, where the brokers are built from;
	// empty: the module of the current directory.
	Root string
	// Dir is where the run makes its own new directory for the brokers'
	// binaries, data directories and logs; empty: the system's temporary
	// directory. The run's directory is removed at the end unless Keep.
	Dir  string
	Keep bool

	Size      int64         // consume-catchup, read-committed: bytes written, then read
	Duration  time.Duration // each timed produce
	Warmup    time.Duration // before each timed produce, not counted
	Rounds    int           // produce measurements per broker, alternating; the median is reported
	Runs      int           // startup: broker starts timed; the median is reported
	Settle    time.Duration // idle-rss: time from serving to reading VmRSS
	DiskBytes int64         // written by the raw disk measurement
	Syncs     int           // limits: appends+fdatasync timed, for group fsync and for sync latency
	// NatsPending is each NATS producer's async publish window
	// (jetstream.WithPublishAsyncMaxPending): messages unacknowledged.
	NatsPending int

	LatencyRate      int // latency-*: records per second, 1 KiB each, for Warmup then Duration
	IdlePartitions   int // idle-1000-partitions: partitions created, 100 per topic
	IdleConns        int // idle-1000-partitions: client connections held open
	ManyPartitions   int // partitions-10k: partitions created, 100 per topic
	MetadataRequests int // partitions-10k, cluster-3: all-topics Metadata requests timed
	ClusterTopics    int // cluster-3: topics created through the quorum, one per request
	IdleReplicated   int // cluster-idle-rf3: partitions of replication factor 3 created, 100 per topic
	// IdleWindow is cluster-idle-rf3's measurement: each broker's CPU
	// time over it, once the partitions are led and settled.
	IdleWindow  time.Duration
	Failovers   int   // cluster-leader-failover: leaders killed
	CatchupSize int64 // cluster-follower-catchup: bytes written while a follower is down
	// CatchupLag is cluster-follower-catchup's replica.lag.time.max.ms
	// (--set on every node); 0 leaves the broker's default (30 s). The
	// follower stays down longer than it.
	CatchupLag  time.Duration
	RestartSize int64 // restart-100-partitions: bytes in 100 partitions before the restarts
	// BacklogSize is what backlog-rss's consumer reads; 0 is RestartSize,
	// and then both read the same data, written once.
	BacklogSize int64
	// Strom, Kfake and Nats are the brokers run; an empty Path builds them
	// from Root (cmd/strom, bench/cmd/kfakeserver, bench/cmd/natsserver)
	// into Dir, natsserver only when a scenario first starts it.
	Strom, Kfake, Nats Program

	// Out receives figure lines and progress (lines starting with "#").
	Out io.Writer
}

// DefaultConfig is the size of `make bench`: within 15 minutes on 2 cores,
// 10 GiB of disk.
func DefaultConfig() Config {
	return Config{
		Size:             1 * GiB,
		Duration:         10 * time.Second,
		Warmup:           2 * time.Second,
		Rounds:           3,
		Runs:             7,
		Settle:           2 * time.Second,
		DiskBytes:        512 * MiB,
		Syncs:            1000,
		NatsPending:      4000, // nats.go's own default
		LatencyRate:      20000,
		IdlePartitions:   1000,
		IdleConns:        100,
		ManyPartitions:   10000,
		MetadataRequests: 200,
		ClusterTopics:    1000,
		IdleReplicated:   1000,
		IdleWindow:       20 * time.Second,
		Failovers:        20,
		CatchupSize:      1 * GiB,
		RestartSize:      10 * GiB,
	}
}

// SmokeConfig checks that every scenario works, in seconds: its figures
// mean nothing.
func SmokeConfig() Config {
	return Config{
		Size:      8 * MiB,
		Duration:  time.Second,
		Warmup:    300 * time.Millisecond,
		Rounds:    1,
		Runs:      3,
		Settle:    200 * time.Millisecond,
		DiskBytes: 16 * MiB,
		Syncs:     20,
		// After its last publish a producer waits for the whole window:
		// nats-fsync acknowledges a few thousand a second, less under -race.
		NatsPending: 64,

		LatencyRate:      2000,
		IdlePartitions:   50,
		IdleConns:        10,
		ManyPartitions:   300,
		MetadataRequests: 20,
		ClusterTopics:    30,
		IdleReplicated:   30,
		IdleWindow:       2 * time.Second,
		Failovers:        1,
		CatchupSize:      4 * MiB,
		CatchupLag:       2 * time.Second,
		RestartSize:      8 * MiB,
	}
}

func (c Config) validate() error {
	switch {
	case c.Size <= 0, c.DiskBytes <= 0, c.RestartSize < KiB, c.BacklogSize < 0, c.CatchupSize < KiB:
		return errors.New("sizes must be positive")
	case c.LatencyRate <= 0, c.IdlePartitions <= 0, c.IdleConns <= 0, c.ManyPartitions <= 0, c.MetadataRequests <= 0, c.ClusterTopics <= 0, c.IdleReplicated <= 0, c.Failovers <= 0:
		return errors.New("rates and counts must be positive")
	case c.Duration <= 0, c.Warmup < 0, c.Settle < 0, c.IdleWindow <= 0, c.CatchupLag < 0:
		return errors.New("durations must be positive")
	case c.Rounds <= 0, c.Runs <= 0, c.Syncs <= 0, c.NatsPending <= 0:
		return errors.New("rounds, runs, syncs and the NATS window must be positive")
	}
	return nil
}

// Report is one run: its setting and every scenario's results.
type Report struct {
	Config  Config
	Command string // as typed; set by the caller
	Started time.Time
	Elapsed time.Duration
	Machine Machine
	Commit  string
	Clients string // franz-go and kfake versions
	// LoadBefore and LoadAfter are `uptime` at the start and the end:
	// other work on the machine skews every figure.
	LoadBefore, LoadAfter string
	Results               []Result
}

// Result is what one scenario reported.
type Result struct {
	Scenario Scenario
	Figures  []Figure
	Notes    []string
	Err      error
}

// Err joins the errors of the scenarios that failed.
func (r *Report) Err() error {
	var errs []error
	for _, res := range r.Results {
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", res.Scenario.Name, res.Err))
		}
	}
	return errors.Join(errs...)
}

// Run runs the scenarios one after another. The error is for what stops
// the whole run (a broker that does not build); a failed scenario is in its
// Result, and the others run.
func Run(ctx context.Context, cfg Config, list []Scenario) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Root == "" {
		root, err := moduleRoot(ctx)
		if err != nil {
			return nil, err
		}
		cfg.Root = root
	}
	// A directory of our own, even inside a given one: removing it at the
	// end must never touch anything else.
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(cfg.Dir, "strombench-")
	if err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer os.RemoveAll(dir)
	}
	cfg.Dir = dir
	rep := &Report{Config: cfg, Started: time.Now(), Machine: probeMachine(dir), Commit: gitCommit(ctx, cfg.Root), Clients: clientVersions(ctx, cfg.Root), LoadBefore: loadAverage(ctx)}
	if cfg.Strom.Path == "" {
		if rep.Config.Strom.Path, err = build(ctx, cfg.Out, cfg.Root, "./cmd/strom", filepath.Join(dir, "bin", "strom")); err != nil {
			return nil, err
		}
	}
	if cfg.Kfake.Path == "" {
		if rep.Config.Kfake.Path, err = build(ctx, cfg.Out, cfg.Root, "./bench/cmd/kfakeserver", filepath.Join(dir, "bin", "kfakeserver")); err != nil {
			return nil, err
		}
	}
	state := &runState{}
	for _, s := range list {
		if ctx.Err() != nil {
			break
		}
		res := Result{Scenario: s}
		e := &Env{cfg: rep.Config, res: &res, dir: filepath.Join(dir, s.Name), run: state}
		began := time.Now()
		fmt.Fprintf(cfg.Out, "# %s: %s\n", s.Name, s.About)
		if err := os.MkdirAll(e.dir, 0o755); err != nil {
			res.Err = err
		} else {
			res.Err = s.Run(ctx, e)
			res.Err = errors.Join(res.Err, e.stopAll())
		}
		if res.Err != nil {
			fmt.Fprintf(cfg.Out, "%-18s FAILED: %v\n", s.Name, res.Err)
		}
		fmt.Fprintf(cfg.Out, "#   %s took %v\n", s.Name, time.Since(began).Round(time.Millisecond))
		rep.Results = append(rep.Results, res)
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.LoadAfter = loadAverage(ctx)
	return rep, ctx.Err()
}

// build compiles a main package of the module at root into out.
func build(ctx context.Context, log io.Writer, root, pkg, out string) (string, error) {
	fmt.Fprintf(log, "# building %s\n", pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// moduleRoot is the directory of the go.mod governing the current
// directory.
func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(b))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("cannot find the module root (go env GOMOD = %q, %v): run from the repository", gomod, err)
	}
	return filepath.Dir(gomod), nil
}

// Env is what a scenario measures with: the run's configuration, a
// directory of its own, brokers to start, and where its figures go.
type Env struct {
	cfg     Config
	res     *Result
	dir     string
	seq     int
	running []*Server // started and not yet stopped
	run     *runState // shared by the run's scenarios
}

// Config is the run's configuration.
func (e *Env) Config() Config { return e.cfg }

// Dir is a directory for this scenario alone.
func (e *Env) Dir() string { return e.dir }

// Figure records a figure of the scenario and prints its line.
func (e *Env) Figure(f Figure) {
	f.Scenario = e.res.Scenario.Name
	e.res.Figures = append(e.res.Figures, f)
	fmt.Fprintln(e.cfg.Out, f)
}

// Notef records a note for the report: a setting, or what a figure hides.
func (e *Env) Notef(format string, args ...any) {
	e.res.Notes = append(e.res.Notes, fmt.Sprintf(format, args...))
}

// Logf prints progress.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Out, "#   "+format+"\n", args...)
}

// Start runs a broker of the given kind on a new, empty data directory.
func (e *Env) Start(ctx context.Context, kind Kind) (*Server, error) {
	var prog Program
	switch kind.Name {
	case Strom.Name:
		prog = e.cfg.Strom
	case Kfake.Name:
		prog = e.cfg.Kfake
	case NatsJS.Name, NatsJSFsync.Name:
		var err error
		if prog, err = e.natsProgram(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("no program configured for broker %q", kind.Name)
	}
	e.seq++
	base := filepath.Join(e.dir, fmt.Sprintf("%s-%d", kind.Name, e.seq))
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	s, err := startServer(ctx, kind, prog, base, base+".log")
	if err != nil {
		return nil, err
	}
	e.running = append(e.running, s)
	return s, nil
}

// Stop stops a broker and removes its data directory.
func (e *Env) Stop(s *Server) error {
	e.running = slices.DeleteFunc(e.running, func(r *Server) bool { return r == s })
	err := s.Stop()
	if !e.cfg.Keep {
		err = errors.Join(err, os.RemoveAll(s.DataDir))
	}
	return err
}

// stopAll stops the brokers a scenario left running, when it failed.
func (e *Env) stopAll() error {
	var errs []error
	for len(e.running) > 0 {
		errs = append(errs, e.Stop(e.running[0]))
	}
	return errors.Join(errs...)
}
