package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// restartLimit is the limit for a restart on a full data dir.
const restartLimit = time.Second

// fillTimeout bounds a scenario that fills size bytes: 10 minutes plus
// what 10 MB/s would take, far below what any broker here writes.
func fillTimeout(size int64) time.Duration {
	return 10*time.Minute + time.Duration(size/10e6)*time.Second
}

// runRestart fills 100 partitions of Strom with RestartSize bytes (or
// reuses a fill of the run), stops it cleanly, and starts it again on the
// same data Runs times, timing each start from exec to its first answered
// ApiVersions and Metadata, and checking every partition's end offset
// after each.
func runRestart(ctx context.Context, e *Env) error {
	cfg := e.Config()
	ctx, cancel := context.WithTimeout(ctx, fillTimeout(cfg.RestartSize))
	defer cancel()
	f, err := e.filled(ctx, cfg.RestartSize)
	if err != nil {
		return err
	}
	e.Notef("Data: %s.", f.describe(filledSpec()))
	e.Notef("Each run: strom serve stopped with SIGTERM (a clean stop: it exits 0), then exec'd again on the same data dir, timed to the first ApiVersions v0 + Metadata v1 answered on one connection (as startup); "+
		"then a new kgo client lists every partition's end offset (ListOffsets), which must equal what it was after the fill. %d runs; the median is reported. "+
		"The data was just written, so it is in the page cache: a restart after a reboot reads the disk too.", cfg.Runs)
	var serving, listed []time.Duration
	s, err := f.open(ctx, e)
	for i := range cfg.Runs {
		if i > 0 {
			s, err = e.Restart(ctx, s)
		}
		if err != nil {
			return fmt.Errorf("start %d: %w", i+1, err)
		}
		t := time.Now()
		if err := f.check(ctx, s.Addr); err != nil {
			return fmt.Errorf("after start %d: %w", i+1, err)
		}
		serving = append(serving, s.Ready)
		listed = append(listed, s.Ready+time.Since(t))
	}
	rss, _, err := s.RSS()
	if err != nil {
		return err
	}
	if err := f.close(e, s); err != nil {
		return err
	}
	med, all := medianDuration(serving)
	lmed, _ := medianDuration(listed)
	e.Figure(Figure{Name: "strom restart", Value: ms(med), Unit: "ms", Versus: "limit 1 s", Ratio: float64(med) / float64(restartLimit), Goal: AtMost,
		Note: fmt.Sprintf("%s in %d partitions; median of %d, runs %s ms", FormatSize(f.Bytes), f.Partitions, len(serving), all)})
	e.Figure(Figure{Name: "strom restart to offsets", Value: ms(lmed), Unit: "ms",
		Note: fmt.Sprintf("median exec to all %d end offsets listed and checked, including a new kgo client's connection", f.Partitions)})
	e.Figure(Figure{Name: "strom RSS", Value: float64(rss) / MiB, Unit: "MiB", Note: "after the last restart and check"})
	if !f.Reused {
		e.Figure(Figure{Name: "strom fill", Value: f.Fill.MBps(), Unit: "MB/s", Note: fmt.Sprintf("%s in %v, before the restarts", FormatSize(f.Bytes), f.Fill.Elapsed.Round(time.Millisecond))})
	}
	return nil
}

// medianDuration returns the median (the mean of the two middle ones for
// an even count) and every value in ms, in the order measured, as text.
func medianDuration(ds []time.Duration) (time.Duration, string) {
	all := make([]string, len(ds))
	for i, d := range ds {
		all[i] = fmt.Sprintf("%.1f", ms(d))
	}
	sorted := slices.Sorted(slices.Values(ds))
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + med) / 2
	}
	return med, strings.Join(all, ", ")
}

// runRestartAfterKill writes RestartSize bytes into 100 partitions of a
// fresh broker (acks=1: nothing fsynced but sealed segments), kills it with
// SIGKILL (the page cache warm, the machine still up), and times the start
// on that data: the recovery of everything the last recovery-point
// checkpoint does not cover. It then kills the restarted broker again at
// once, Runs-1 times, timing each start. End offsets are checked after each.
func runRestartAfterKill(ctx context.Context, e *Env) error {
	cfg := e.Config()
	ctx, cancel := context.WithTimeout(ctx, fillTimeout(cfg.RestartSize))
	defer cancel()
	spec := filledSpec()
	s, err := e.Start(ctx, Strom)
	if err != nil {
		return err
	}
	dir := s.DataDir
	n := cfg.RestartSize / int64(spec.RecordBytes)
	tp, err := fill(ctx, s, filledTopic, spec, n)
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	end, err := endOffsets(ctx, s.Addr, filledTopic)
	if err != nil {
		return err
	}
	e.Notef("Data: %s in %d partitions of 1 KiB records written with acks=1 at %.0f MB/s, then SIGKILL at once (page cache warm, same boot). "+
		"Each start is timed from exec to the first ApiVersions v0 + Metadata v1 answered; every end offset is checked after it. "+
		"The first start recovers the data the kill left unchecked; the later ones follow a SIGKILL of the just-started broker.",
		FormatSize(tp.Bytes), spec.Partitions, tp.MBps())
	var starts []time.Duration
	for i := range cfg.Runs {
		s.kill()
		e.running = slices.DeleteFunc(e.running, func(r *Server) bool { return r == s })
		if s, err = e.startOn(ctx, Strom, e.cfg.Strom, dir); err != nil {
			return fmt.Errorf("start %d after kill: %w", i+1, err)
		}
		got, err := endOffsets(ctx, s.Addr, filledTopic)
		if err != nil {
			return err
		}
		for p, want := range end {
			if got[p] != want {
				return fmt.Errorf("start %d after kill: partition %d ends at %d, was %d", i+1, p, got[p], want)
			}
		}
		starts = append(starts, s.Ready)
	}
	_, all := medianDuration(starts)
	e.Figure(Figure{Name: "strom restart after kill -9", Value: ms(starts[0]), Unit: "ms", Versus: "limit 1 s", Ratio: float64(starts[0]) / float64(restartLimit), Goal: AtMost,
		Note: fmt.Sprintf("%s written then SIGKILL; all starts %s ms", FormatSize(tp.Bytes), all)})
	cold, err := coldStartAfterKill(ctx, e, s, dir, end)
	if err != nil {
		return err
	}
	return e.Stop(cold)
}

// coldStartAfterKill kills s, evicts the data dir from the page cache
// (evictDataDir: as after a reboot) and times one more start, which reads
// what it recovers and indexes from the disk: the cost of a cold cache,
// beside the warm starts.
func coldStartAfterKill(ctx context.Context, e *Env, s *Server, dir string, end map[int32]int64) (*Server, error) {
	s.kill()
	e.running = slices.DeleteFunc(e.running, func(r *Server) bool { return r == s })
	how, err := evictDataDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	resident, err := residentFraction(dir)
	if err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	if s, err = e.startOn(ctx, Strom, e.cfg.Strom, dir); err != nil {
		return nil, fmt.Errorf("cold start after kill: %w", err)
	}
	got, err := endOffsets(ctx, s.Addr, filledTopic)
	if err != nil {
		return nil, err
	}
	for p, want := range end {
		if got[p] != want {
			return nil, fmt.Errorf("cold start after kill: partition %d ends at %d, was %d", p, got[p], want)
		}
	}
	e.Figure(Figure{Name: "strom restart after kill -9, cold cache", Value: ms(s.Ready), Unit: "ms", Versus: "limit 1 s", Ratio: float64(s.Ready) / float64(restartLimit), Goal: AtMost,
		Note: fmt.Sprintf("one more SIGKILL, then the data dir evicted (%s; %.1f%% of its pages still cached before the start), end offsets checked", how, 100*resident)})
	return s, nil
}
