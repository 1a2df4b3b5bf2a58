package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Goal says which way a figure's ratio must fall for the target it is
// reported against to be met.
type Goal int

const (
	// NoGoal: the ratio, if any, is context (Strom against the loopback
	// copy, the broker's CPU against kfake's).
	NoGoal Goal = iota
	// AtLeast: met when Ratio >= Target (throughput against a peer).
	AtLeast
	// AtMost: met when Ratio <= Target (memory or time against a limit).
	AtMost
)

// Comparison is a figure set against one thing: a peer measured in the same
// run, or a limit (measured, or stated by the issue). Ratio is the figure's
// value divided by that one's.
type Comparison struct {
	Versus string
	Ratio  float64
	Goal   Goal
	Target float64 // the ratio the goal is about; 0 means 1
}

// Figure is one measured number. Versus names what Value is compared with
// (a peer measured in the same run, or a limit) and Ratio is Value divided
// by that, Goal and Target what the ratio should be; all are empty for a
// figure that stands alone. Also holds further comparisons: a headline
// figure is set against its limit and against every peer.
type Figure struct {
	Scenario string
	Name     string // what was measured: "strom", "kfake broker CPU"
	Value    float64
	Unit     string
	Versus   string
	Ratio    float64
	Goal     Goal
	Target   float64 // 0 means 1
	Also     []Comparison
	Note     string // how it was measured or what else was seen, short
}

// Comparisons is every comparison of the figure, the first one first.
func (f Figure) Comparisons() []Comparison {
	var cs []Comparison
	if f.Versus != "" {
		cs = append(cs, Comparison{Versus: f.Versus, Ratio: f.Ratio, Goal: f.Goal, Target: f.Target})
	}
	return append(cs, f.Also...)
}

// Verdict is "ok" or "missed" for a comparison with a goal, else "".
func (c Comparison) Verdict() string {
	t := c.target()
	switch {
	case c.Goal == NoGoal || c.Versus == "":
		return ""
	case c.Goal == AtLeast && c.Ratio >= t, c.Goal == AtMost && c.Ratio <= t:
		return "ok"
	default:
		return "missed"
	}
}

func (c Comparison) target() float64 {
	if c.Target == 0 {
		return 1
	}
	return c.Target
}

// goalText is the goal as written in reports: ">= 3x: ok".
func (c Comparison) goalText() string {
	v := c.Verdict()
	if v == "" {
		return ""
	}
	op := ">="
	if c.Goal == AtMost {
		op = "<="
	}
	return op + " " + strconv.FormatFloat(c.target(), 'f', -1, 64) + "x: " + v
}

// Verdict is "missed" when any comparison with a goal misses it, "ok" when
// every one with a goal meets it, and "" when none has a goal.
func (f Figure) Verdict() string {
	v := ""
	for _, c := range f.Comparisons() {
		switch c.Verdict() {
		case "missed":
			return "missed"
		case "ok":
			v = "ok"
		}
	}
	return v
}

// String is the figure as one line: scenario, name, value and unit, then
// each ratio with what it is against and its goal, and the note.
func (f Figure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %-26s %12s %-10s", f.Scenario, f.Name, formatValue(f.Value), f.Unit)
	for i, c := range f.Comparisons() {
		if i == 0 {
			fmt.Fprintf(&b, " %7sx %s", formatRatio(c.Ratio), c.Versus)
		} else {
			fmt.Fprintf(&b, ", %sx %s", formatRatio(c.Ratio), c.Versus)
		}
		if g := c.goalText(); g != "" {
			fmt.Fprintf(&b, " (%s)", g)
		}
	}
	if f.Note != "" {
		fmt.Fprintf(&b, "  # %s", f.Note)
	}
	return strings.TrimRight(b.String(), " ")
}

// formatValue prints three significant figures at least, and no
// exponent: 0.0123, 1.23, 123, 123456.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a == 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		digits := max(2-int(math.Floor(math.Log10(a))), 3)
		return strconv.FormatFloat(v, 'f', digits, 64)
	}
}

func formatRatio(r float64) string { return strconv.FormatFloat(r, 'f', 2, 64) }

// Size units. Throughput is reported in MB/s (10^6 bytes), as disks and
// networks are; memory in MiB.
const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
	MB  = 1e6
)

// ParseSize reads a byte count: a plain number or one with a unit, binary
// (KiB, MiB, GiB) or decimal (KB, MB, GB); "1GiB", "64MiB", "100MB".
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || v*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, such as 1GiB or 64MiB", s)
	}
	return int64(v * mult), nil
}

// FormatSize prints a byte count with the largest binary unit that keeps it
// a whole or one-decimal number: "1GiB", "8MiB", "1.5KiB", "100B".
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if n >= u.mult && (n*10)%u.mult == 0 {
			return strconv.FormatFloat(float64(n)/float64(u.mult), 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
