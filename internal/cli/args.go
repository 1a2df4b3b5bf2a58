package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// signalContext is the command's context, cancelled by SIGINT or SIGTERM
// so that a long consume or produce stops cleanly: output flushed, offsets
// committed, records delivered.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// names merges positional names with those given by a Kafka-style flag
// (--topic, --group), keeping order and dropping duplicates.
func names(args, flagged []string, what, example string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, n := range append(append([]string(nil), args...), flagged...) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, &problem{msg: "no " + what + " given", hint: "name one, e.g. " + example}
	}
	return out, nil
}

// configNameRE matches the start of a "name=" pair inside a comma list.
var configNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+=`)

// parseConfigs parses name=value pairs. Each flag value may hold several
// pairs separated by commas, as kafka-configs.sh --add-config takes them;
// a comma not followed by "name=" belongs to the value (list configs such
// as leader.replication.throttled.replicas=0:1,1:1).
func parseConfigs(flag string, vals []string) ([][2]string, error) {
	var out [][2]string
	for _, v := range vals {
		var parts []string
		for _, p := range strings.Split(v, ",") {
			if len(parts) > 0 && !configNameRE.MatchString(p) {
				parts[len(parts)-1] += "," + p
				continue
			}
			parts = append(parts, p)
		}
		for _, p := range parts {
			k, val, ok := strings.Cut(p, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, usageErr("%s %q: want name=value, e.g. %s retention.ms=86400000", flag, p, flag)
			}
			out = append(out, [2]string{k, strings.TrimSpace(val)})
		}
	}
	return out, nil
}

// parseTime reads a point in time: milliseconds since the epoch, an
// RFC 3339 time, a date (2024-05-01, local time), or a duration before
// now (-15m, 2h).
func parseTime(flag, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, usageErr("%s %q: want milliseconds since the epoch, a time like 2024-05-01T12:00:00Z or 2024-05-01, or a duration ago like -15m", flag, s)
}

// failures collects per-item errors of a command that acts on several
// topics or groups: all but the last are printed as they come, the last
// is returned so that the exit code says something failed.
type failures struct {
	w    io.Writer
	last error
}

func (f *failures) add(err error) {
	if f.last != nil {
		fmt.Fprintln(f.w, "strom:", f.last)
	}
	f.last = err
}

func (f *failures) err() error { return f.last }
