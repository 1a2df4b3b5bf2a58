package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits from the issue.
const (
	idleRSSLimit = 30 * MiB
	startupLimit = 100 * time.Millisecond
)

// runIdleRSS starts strom serve on an empty data dir, leaves it alone for
// Settle after it first answered, and reads its resident set. kfake's,
// measured the same way, is context: it is no target.
func runIdleRSS(ctx context.Context, e *Env) error {
	cfg := e.Config()
	e.Notef("VmRSS of the process from /proc/<pid>/status, %v after its first answered ApiVersions+Metadata, nothing else asked of it; peak is VmHWM.", cfg.Settle)
	rss := func(k Kind) (rss, peak int64, err error) {
		srv, err := e.Start(ctx, k)
		if err != nil {
			return 0, 0, err
		}
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		if rss, peak, err = srv.RSS(); err != nil {
			return 0, 0, err
		}
		return rss, peak, e.Stop(srv)
	}
	s, sPeak, err := rss(Strom)
	if err != nil {
		return err
	}
	e.Figure(Figure{Name: "strom idle RSS", Value: float64(s) / MiB, Unit: "MiB", Versus: "limit 30 MiB", Ratio: float64(s) / idleRSSLimit, Goal: AtMost,
		Note: fmt.Sprintf("peak %.1f MiB", float64(sPeak)/MiB)})
	f, fPeak, err := rss(Kfake)
	if err != nil {
		return err
	}
	e.Figure(Figure{Name: "kfake idle RSS", Value: float64(f) / MiB, Unit: "MiB", Note: fmt.Sprintf("peak %.1f MiB", float64(fPeak)/MiB)})
	return nil
}

// runStartup starts strom serve Runs times, each on a new empty data dir,
// and reports the median time from exec to its first answered ApiVersions
// and Metadata requests.
func runStartup(ctx context.Context, e *Env) error {
	cfg := e.Config()
	e.Notef("Each run: a new empty data dir, exec of strom serve, then a connection attempt every %v until ApiVersions v0 and Metadata v1 are answered on one connection; %d runs, median reported. Includes fork/exec and the Go runtime's start.", probeEvery, cfg.Runs)
	times := make([]time.Duration, 0, cfg.Runs)
	unhandled := 0
	for range cfg.Runs {
		srv, err := e.Start(ctx, Strom)
		if err != nil {
			return err
		}
		times = append(times, srv.Ready)
		// The stop comes right after the first answer: a broker that
		// answers before it handles SIGTERM can die of it. That does not
		// change when it started serving; it is reported, not fatal.
		if err := e.Stop(srv); errors.Is(err, errUnhandledTerm) {
			unhandled++
		} else if err != nil {
			return err
		}
	}
	if unhandled > 0 {
		e.Logf("%d of %d runs: strom %v", unhandled, cfg.Runs, errUnhandledTerm)
		e.Notef("%d of %d runs: strom was %v: SIGTERM sent right after its first answer.", unhandled, cfg.Runs, errUnhandledTerm)
	}
	all := make([]string, len(times))
	for i, t := range times {
		all[i] = fmt.Sprintf("%.1f", ms(t))
	}
	slices.Sort(times)
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + med) / 2
	}
	e.Figure(Figure{Name: "strom start to serving", Value: ms(med), Unit: "ms", Versus: "limit 100 ms", Ratio: float64(med) / float64(startupLimit), Goal: AtMost,
		Note: fmt.Sprintf("median of %d; min %.1f, max %.1f; runs %s ms", len(times), ms(times[0]), ms(times[len(times)-1]), strings.Join(all, ", "))})
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
