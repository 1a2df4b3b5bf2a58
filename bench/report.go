package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Markdown is the report as a section of a results file: how it was run,
// on what, a table of every figure, and each scenario's notes.
func (r *Report) Markdown() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "## Run of %s\n\n", r.Started.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	fmt.Fprintf(&b, "- Commit: %s\n", r.Commit)
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- Data dir disk: %s\n", orUnknown(r.Machine.DataDisk))
	fmt.Fprintf(&b, "- Client and peer: %s\n", r.Clients)
	fmt.Fprintf(&b, "- Load (`uptime`): before: %s; after: %s\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "- Settings: -size %s, -duration %v, -warmup %v, -rounds %d, -runs %d, -settle %v, disk measurement %s, -syncs %d, -nats-pending %d\n",
		FormatSize(c.Size), c.Duration, c.Warmup, c.Rounds, c.Runs, c.Settle, FormatSize(c.DiskBytes), c.Syncs, c.NatsPending)
	fmt.Fprintf(&b, "- Took: %v\n\n", r.Elapsed.Round(time.Second))

	b.WriteString("| scenario | figure | value | unit | ratio | against | goal | note |\n")
	b.WriteString("|---|---|---:|---|---:|---|---|---|\n")
	for _, res := range r.Results {
		for _, f := range res.Figures {
			// A figure with several comparisons keeps one row: each of
			// its cells holds one line per comparison.
			var ratios, versus, goals []string
			anyGoal := false
			for _, c := range f.Comparisons() {
				g := c.goalText()
				anyGoal = anyGoal || g != ""
				ratios = append(ratios, formatRatio(c.Ratio)+"x")
				versus = append(versus, cell(c.Versus))
				goals = append(goals, g)
			}
			if !anyGoal {
				goals = nil
			}
			for i, g := range goals {
				if g == "" {
					goals[i] = "–" // keeps the lines of the cells aligned
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
				f.Scenario, f.Name, formatValue(f.Value), f.Unit, strings.Join(ratios, "<br>"), strings.Join(versus, "<br>"), strings.Join(goals, "<br>"), cell(f.Note))
		}
		if res.Err != nil {
			fmt.Fprintf(&b, "| %s | FAILED |  |  |  |  |  | %s |\n", res.Scenario.Name, cell(res.Err.Error()))
		}
	}
	b.WriteString("\n")
	for _, res := range r.Results {
		fmt.Fprintf(&b, "### %s\n\n%s.\n\n", res.Scenario.Name, res.Scenario.About)
		for _, n := range res.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		if res.Err != nil {
			fmt.Fprintf(&b, "- **Failed:**\n\n```\n%s\n```\n", res.Err)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// resultsHeader opens a new results file.
const resultsHeader = `# Strom benchmark results, %s

Each section below is one run of ` + "`strombench`" + ` (bench/cmd/strombench),
written by the harness itself. MB is 10^6 bytes, MiB 2^20. A ratio is the
figure divided by what it is against: a peer measured in the same run, or
the issue's limit. Brokers run as processes of their own; the client runs in
the harness's process. CPU times are utime+stime from /proc/<pid>/stat.

`

// WriteResults appends the report to dir/<YYYY-MM-DD>.md (the run's start
// date, UTC), creating the file with a header when it is the day's first
// run, and returns the file's path.
func WriteResults(dir string, r *Report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	day := r.Started.UTC().Format("2006-01-02")
	path := filepath.Join(dir, day+".md")
	var head string
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		head = fmt.Sprintf(resultsHeader, day)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(head + r.Markdown())
	return path, errors.Join(err, f.Close())
}

// cell makes text safe for one cell of a markdown table.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
