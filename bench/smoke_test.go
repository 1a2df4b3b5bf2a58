package bench

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/bench/internal/kfakeserver"
	"github.com/stromhq/strom/bench/internal/natsserver"
	"github.com/stromhq/strom/cmd/strom/servecmd"
	"github.com/stromhq/strom/internal/cli"
)

// roleEnv makes this test binary act as a broker: building cmd/strom,
// kfakeserver and natsserver from a cold cache takes longer than the whole
// smoke test may, and the test binary already holds all three. The harness execs it exactly as
// it execs the real binaries.
const roleEnv = "STROMBENCH_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "strom":
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr, servecmd.Commands()...))
	case "kfake":
		os.Exit(kfakeserver.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	case "nats":
		os.Exit(natsserver.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestSmoke runs every scenario at smoke size and checks that each reports
// its figures, positive and with the ratios it promises, and that the
// results file says how the run was made. The figures themselves mean
// nothing here (-race, tiny sizes).
func TestSmoke(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg := SmokeConfig()
	cfg.Dir = t.TempDir()
	// Under -race a program sleeps a second at exit unless told not to.
	gorace := "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cfg.Strom = Program{Path: self, Env: []string{roleEnv + "=strom", gorace}}
	cfg.Kfake = Program{Path: self, Env: []string{roleEnv + "=kfake", gorace}}
	cfg.Nats = Program{Path: self, Env: []string{roleEnv + "=nats", gorace}}
	cfg.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg, Scenarios())
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}

	// scenario: figure ("name unit"): what it must be compared with, in
	// order, by the start of each comparison's Versus.
	want := map[string]map[string][]string{
		"limits": {"disk seq write MB/s": nil, "group fsync MB/s": nil, "4KiB append+sync p50 ms": nil, "4KiB append+sync p99 ms": nil, "parallel group fsync MB/s": nil, "loopback TCP MB/s": nil},
		"produce-1k-acks1": {
			"strom MB/s":      {"kfake", "nats", "disk seq write ", "loopback TCP "},
			"strom records/s": {"kfake", "nats"},
			"nats MB/s":       nil,
		},
		"produce-1k-acksall": {"strom MB/s": {"nats-fsync", "nats", "parallel group fsync ", "group fsync "}, "nats-fsync MB/s": nil, "nats MB/s": nil},
		"produce-1k-snappy":  {"strom MB/s": {"kfake", "loopback TCP "}, "kfake MB/s": nil, "strom broker allocs allocs/MB": nil},
		"produce-1k-lz4":     {"strom MB/s": {"kfake", "loopback TCP "}, "strom broker allocs allocs/MB": nil},
		"produce-1k-zstd":    {"strom MB/s": {"kfake", "loopback TCP "}, "strom broker allocs allocs/MB": nil},
		"produce-100b":       {"strom records/s": {"kfake", "target 1M records/s"}, "strom MB/s": {"kfake", "loopback TCP "}},
		"produce-1k-sasl-ssl": {
			"strom SASL_SSL MB/s":                    {"strom PLAINTEXT"},
			"strom PLAINTEXT MB/s":                   nil,
			"strom SASL_SSL broker CPU s":            nil,
			"strom SCRAM conns, 1 at a time conns/s": nil,
			"strom SCRAM conns, 4 at a time conns/s": nil,
		},
		"txn-1mib":        {"strom transactional MB/s": {"strom idempotent"}, "strom idempotent MB/s": nil},
		"txn-small":       {"strom tx/s": nil},
		"read-committed":  {"strom read_committed MB/s": {"strom read_uncommitted"}, "strom read_uncommitted MB/s": nil},
		"consume-catchup": {"strom MB/s": {"loopback TCP"}, "strom raw fetch MB/s": {"loopback TCP"}, "strom raw fetch broker allocs allocs/MB": nil},
		"idle-rss":        {"strom idle RSS MiB": {"limit 30 MiB"}},
		"startup":         {"strom start to serving ms": {"limit 100 ms"}},
		// "": compared with something, whatever it is.
		"latency-acks1":          {"strom e2e p99 ms": {""}, "strom produce p99 ms": {""}, "strom e2e p99.9 ms": nil, "strom produce p99.9 ms": nil, "strom rate records/s": {""}, "kfake rate records/s": {""}},
		"latency-acksall":        {"strom e2e p99 ms": {""}, "strom produce p99 ms": {""}},
		"idle-1000-partitions":   {"strom RSS MiB": {""}},
		"partitions-10k":         {"strom create s": {""}, "strom metadata p99 ms": {""}},
		"restart-100-partitions": {"strom restart ms": {""}},
		"cluster-produce-rf3": {
			"strom RF=3 acks=all MB/s": {"strom single node"}, "strom single node acks=all MB/s": nil,
			"strom RF=3 brokers CPU per MB ms": {"single node"}, "strom single node broker CPU per MB ms": nil,
		},
		"cluster-latency-rf3": {"strom RF=3 produce p99 ms": {"goal 10 ms"}, "strom RF=3 produce p50 ms": nil, "strom RF=3 rate records/s": {"rate asked"}},
		"cluster-leader-failover": {
			"strom leader failover, MetadataMinAge 250ms ms": {"goal 2 s"}, "strom leader failover max, MetadataMinAge 250ms ms": nil,
			"strom leader failover, default MetadataMinAge ms": nil, "strom leader failover max, default MetadataMinAge ms": nil,
		},
		"cluster-follower-catchup": {
			"strom follower catch-up MB/s": nil, "strom produce p99 during catch-up ms": {"p99 before the restart"},
			"strom produce p50 during catch-up ms": {"p50 before the restart"}, "strom catching-up node CPU % core": nil,
			"strom produce p99 during catch-up, MetadataMinAge 250ms ms": {"p99 before the restart"},
		},
		"backlog-rss": {"strom RSS peak MiB": {""}},
	}
	limits := map[string]float64{} // name: value, from the limits scenario
	for _, res := range rep.Results {
		name := res.Scenario.Name
		if len(res.Figures) == 0 {
			t.Errorf("%s: no figures", name)
		}
		got := map[string][]string{}
		for _, f := range res.Figures {
			if f.Value <= 0 && !strings.Contains(f.Name, "CPU") {
				t.Errorf("%s: %s = %v %s", name, f.Name, f.Value, f.Unit)
			}
			if name == "limits" {
				limits[f.Name] = f.Value
			} else if _, ok := limits[f.Name]; ok {
				t.Errorf("%s: measured %s again after the limits scenario", name, f.Name)
			}
			var versus []string
			for _, c := range f.Comparisons() {
				if c.Ratio <= 0 || math.IsInf(c.Ratio, 0) || math.IsNaN(c.Ratio) {
					t.Errorf("%s: %s ratio %v against %s", name, f.Name, c.Ratio, c.Versus)
				}
				versus = append(versus, c.Versus)
			}
			got[f.Name+" "+f.Unit] = versus
			if !strings.Contains(out.String(), f.String()) {
				t.Errorf("%s: line %q not printed", name, f)
			}
		}
		for fig, wantVersus := range want[name] {
			versus, ok := got[fig]
			if !ok {
				t.Errorf("%s: no figure %q", name, fig)
				continue
			}
			if len(wantVersus) == 1 && wantVersus[0] == "" {
				if len(versus) == 0 {
					t.Errorf("%s: %s is compared with nothing", name, fig)
				}
				continue
			}
			if len(versus) != len(wantVersus) {
				t.Errorf("%s: %s against %q, want %q", name, fig, versus, wantVersus)
				continue
			}
			for i, v := range wantVersus {
				if !strings.HasPrefix(versus[i], v) {
					t.Errorf("%s: %s against %q, want %q", name, fig, versus, wantVersus)
					break
				}
			}
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("scenario %s did not run", name)
	}
	// The produce scenarios are judged against the limits measured first.
	if v, ok := limits["disk seq write"]; !ok || !strings.Contains(out.String(), "disk seq write "+formatValue(v)+" MB/s") {
		t.Errorf("no figure against the disk seq write limit of %v MB/s measured by the limits scenario", v)
	}

	rep.Command = "strombench -smoke"
	path, err := WriteResults(filepath.Join(t.TempDir(), "results"), rep)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"# Strom benchmark results", "Command: `strombench -smoke`", "Commit: ", "cores", "Client and peer: github.com/twmb/franz-go v", "github.com/nats-io/nats-server/v2 v", "Load (`uptime`)", "| produce-1k-acks1 | strom | ", "x<br>", "Mapping: JetStream has no partitions"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("results file lacks %q:\n%s", s, b)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1GiB", GiB}, {"64MiB", 64 * MiB}, {"1.5KiB", 1536}, {"100MB", 100e6}, {"2GB", 2e9}, {"4096", 4096}, {"10B", 10},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if back, err := ParseSize(FormatSize(tc.want)); err != nil || back != tc.want {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", tc.want, FormatSize(tc.want), back, err)
		}
	}
	for _, bad := range []string{"", "0", "-1MiB", "MiB", "1TiB", "x"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
}

func TestFigureLine(t *testing.T) {
	f := Figure{Scenario: "produce-1k-acks1", Name: "strom", Value: 212.345, Unit: "MB/s", Versus: "kfake", Ratio: 1.1234, Goal: AtLeast, Note: "n"}
	if got, want := f.String(), "produce-1k-acks1   strom                             212.3 MB/s          1.12x kfake (>= 1x: ok)  # n"; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	many := f
	many.Also = []Comparison{{Versus: "nats", Ratio: 2.5, Goal: AtLeast, Target: 3}, {Versus: "disk seq write 900 MB/s", Ratio: 0.236, Goal: AtLeast, Target: 0.6}, {Versus: "loopback TCP", Ratio: 0.05}}
	if got, want := many.String(), "produce-1k-acks1   strom                             212.3 MB/s          1.12x kfake (>= 1x: ok), 2.50x nats (>= 3x: missed), 0.24x disk seq write 900 MB/s (>= 0.6x: missed), 0.05x loopback TCP  # n"; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
	if many.Verdict() != "missed" {
		t.Errorf("one comparison missed, verdict %q", many.Verdict())
	}
	many.Also[0].Ratio, many.Also[1].Ratio = 3, 0.6
	if many.Verdict() != "ok" {
		t.Errorf("every goal met, verdict %q", many.Verdict())
	}
	if got := (Figure{Versus: "loopback TCP", Ratio: 0.1}).Verdict(); got != "" {
		t.Errorf("no goal, verdict %q", got)
	}
	f.Ratio = 0.9
	if f.Verdict() != "missed" {
		t.Errorf("ratio 0.9 at least 1: %q", f.Verdict())
	}
	f.Goal, f.Ratio = AtMost, 0.5
	if f.Verdict() != "ok" {
		t.Errorf("ratio 0.5 at most 1: %q", f.Verdict())
	}
	if got := (Figure{Scenario: "s", Name: "n", Value: 0.01234, Unit: "s"}).String(); !strings.Contains(got, "0.0123 s") {
		t.Errorf("small value: %q", got)
	}
}

// A figure with several comparisons keeps one table row, one line per
// comparison in each cell; a row without goals leaves its goal cell empty.
func TestMarkdownComparisons(t *testing.T) {
	s := Scenario{Name: "produce-x", About: "a"}
	rep := &Report{Results: []Result{{Scenario: s, Figures: []Figure{
		{Scenario: s.Name, Name: "strom", Value: 400, Unit: "MB/s", Versus: "kfake", Ratio: 1.2, Goal: AtLeast,
			Also: []Comparison{{Versus: "loopback TCP 3000 MB/s", Ratio: 0.133}, {Versus: "nats", Ratio: 2, Goal: AtLeast, Target: 3}}},
		{Scenario: s.Name, Name: "strom", Value: 400000, Unit: "records/s", Versus: "kfake", Ratio: 1.2, Also: []Comparison{{Versus: "nats", Ratio: 2}}},
	}}}}
	md := rep.Markdown()
	for _, row := range []string{
		"| produce-x | strom | 400.0 | MB/s | 1.20x<br>0.13x<br>2.00x | kfake<br>loopback TCP 3000 MB/s<br>nats | >= 1x: ok<br>–<br>>= 3x: missed |  |\n",
		"| produce-x | strom | 400000 | records/s | 1.20x<br>2.00x | kfake<br>nats |  |  |\n",
	} {
		if !strings.Contains(md, row) {
			t.Errorf("no row %q in\n%s", row, md)
		}
	}
}
