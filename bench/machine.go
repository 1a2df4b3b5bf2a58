package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what the figures were measured on.
type Machine struct {
	Cores    int    // runtime.NumCPU: the CPUs this process may run on
	CPU      string // model name from /proc/cpuinfo
	Memory   int64  // MemTotal from /proc/meminfo, bytes
	Kernel   string
	Go       string
	DataDir  string
	DataDisk string // `df -PT` of DataDir: device, type, size, used, available
}

func (m Machine) String() string {
	cpu := ""
	if m.CPU != "" {
		cpu = " (" + m.CPU + ")"
	}
	return fmt.Sprintf("%d cores%s, %.1f GiB memory, Linux %s, %s", m.Cores, cpu, float64(m.Memory)/GiB, m.Kernel, m.Go)
}

// probeMachine describes this machine; what it cannot read stays empty.
func probeMachine(dataDir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, DataDir: dataDir}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) == 2 && f[1] == "kB" {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.Memory = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	// -P keeps one file system on one line; -T adds its type; -h sizes
	// for people.
	if b, err := exec.Command("df", "-PhT", dataDir).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) == 2 {
			f := strings.Fields(lines[1])
			if len(f) >= 7 {
				m.DataDisk = fmt.Sprintf("%s %s, %s, %s used, %s available, mounted on %s", f[0], f[1], f[2], f[3], f[4], f[6])
			}
		}
	}
	return m
}

// gitCommit is HEAD of the repository at root, followed by
// "+ uncommitted changes" when the work tree differs from it: the figures
// are then of code no commit holds.
func gitCommit(ctx context.Context, root string) string {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		b, err := cmd.Output()
		return strings.TrimSpace(string(b)), err
	}
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		return "unknown (not a git checkout)"
	}
	status, err := git("status", "--porcelain")
	if err != nil || status != "" {
		return head + " + uncommitted changes"
	}
	return head
}

// loadAverage is the output of uptime, or /proc/loadavg without it.
func loadAverage(ctx context.Context) string {
	if b, err := exec.CommandContext(ctx, "uptime").Output(); err == nil {
		return strings.Join(strings.Fields(string(b)), " ")
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		return "loadavg " + strings.TrimSpace(string(b))
	}
	return "unknown"
}

// clientVersions names the client and peer modules of the module at root:
// franz-go, the client the harness drives every Kafka broker with; kfake,
// a peer; nats-server and nats.go, the NATS peer and its client.
func clientVersions(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Path}} {{.Version}}",
		"github.com/twmb/franz-go", "github.com/twmb/franz-go/pkg/kfake", "github.com/nats-io/nats-server/v2", "github.com/nats-io/nats.go")
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Split(strings.TrimSpace(string(b)), "\n"), ", ")
}
