package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/bench/internal/kfakeserver"
	"github.com/stromhq/strom/internal/cli"
)

// roleEnv makes this test binary act as a broker: building cmd/strom and
// kfakeserver from a cold cache takes longer than the whole smoke test may,
// and the test binary already holds both. The harness execs it exactly as
// it execs the real binaries.
const roleEnv = "STROMBENCH_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "strom":
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	case "kfake":
		os.Exit(kfakeserver.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
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
	cfg.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg, Scenarios())
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{ // scenario: figures with a ratio
		"produce-1k-acks1":       {"strom MB/s", "strom records/s"},
		"consume-catchup":        {"strom MB/s"},
		"idle-rss":               {"strom idle RSS MiB"},
		"startup":                {"strom start to serving ms"},
		"latency-acks1":          {"strom e2e p99 ms", "strom produce p99 ms", "strom rate records/s", "kfake rate records/s"},
		"latency-acksall":        {"strom e2e p99 ms", "strom produce p99 ms"},
		"idle-1000-partitions":   {"strom RSS MiB"},
		"partitions-10k":         {"strom create s", "strom metadata p99 ms"},
		"restart-100-partitions": {"strom restart ms"},
		"backlog-rss":            {"strom RSS peak MiB"},
	}
	for _, res := range rep.Results {
		name := res.Scenario.Name
		if len(res.Figures) == 0 {
			t.Errorf("%s: no figures", name)
		}
		withRatio := map[string]bool{}
		for _, f := range res.Figures {
			if f.Value <= 0 && !strings.Contains(f.Name, "CPU") {
				t.Errorf("%s: %s = %v %s", name, f.Name, f.Value, f.Unit)
			}
			if f.Versus != "" {
				if f.Ratio <= 0 {
					t.Errorf("%s: %s ratio %v against %s", name, f.Name, f.Ratio, f.Versus)
				}
				withRatio[f.Name+" "+f.Unit] = true
			}
			if !strings.Contains(out.String(), f.String()) {
				t.Errorf("%s: line %q not printed", name, f)
			}
		}
		for _, w := range want[name] {
			if !withRatio[w] {
				t.Errorf("%s: no figure %q with a ratio", name, w)
			}
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("scenario %s did not run", name)
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
	for _, s := range []string{"# Strom benchmark results", "Command: `strombench -smoke`", "Commit: ", "cores", "Client and peer: github.com/twmb/franz-go v", "Load (`uptime`)", "| produce-1k-acks1 | strom | "} {
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
	if got, want := f.String(), "produce-1k-acks1   strom                         212.3 MB/s          1.12x kfake (>= 1x: ok)  # n"; got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
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
