package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// backlogGrowthLimit is how far the broker's resident set may rise above
// its level before a consumer starts reading a backlog, whatever the
// backlog's size: what "flat" means here. Fetch responses are built in
// memory, so some growth is expected; growth with the backlog is not.
const backlogGrowthLimit = 64 * MiB

// rssEvery is the sampling period of the broker's resident set.
const rssEvery = 250 * time.Millisecond

// runBacklogRSS starts Strom on BacklogSize bytes in 100 partitions (the
// restart scenario's data when the sizes match), then has one consumer read
// all of it from the start while the broker's VmRSS is sampled. Only the
// process's resident memory counts; the page cache holding the log is not
// the broker's.
func runBacklogRSS(ctx context.Context, e *Env) error {
	cfg := e.Config()
	size := cfg.BacklogSize
	if size == 0 {
		size = cfg.RestartSize
	}
	ctx, cancel := context.WithTimeout(ctx, fillTimeout(size))
	defer cancel()
	f, err := e.filled(ctx, size)
	if err != nil {
		return err
	}
	e.Notef("Backlog: %s; Strom stopped after writing it and started again on it for the read.", f.describe(filledSpec()))
	e.Notef("Read: one kgo client, ConsumeTopics + ConsumeResetOffset(AtStart), no group, kgo's default fetch sizes (50 MiB per request, 1 MiB per partition), until every record is read.")
	e.Notef("Criterion, flat: the largest VmRSS sample in the second half of the read is at most 1.1x the largest in the first half (memory does not grow with what has been read). "+
		"Also shown, stricter: the peak VmRSS during the read is at most %s above the VmRSS read %v after the broker started serving, before the read. "+
		"VmRSS is sampled every %v from /proc/<pid>/status; the peak is the largest sample, or VmHWM when that rose during the read (so a peak between samples still counts).",
		FormatSize(backlogGrowthLimit), cfg.Settle, rssEvery)
	s, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	before, hwmBefore, err := s.RSS()
	if err != nil {
		return err
	}
	// A backlog the page cache cannot hold is read from the disk, at the
	// disk's pace: say so beside the figures.
	if avail, err := memAvailable(); err == nil {
		e.Logf("MemAvailable before the read: %.1f GiB for a %s backlog", float64(avail)/GiB, FormatSize(f.Bytes))
		e.Notef("MemAvailable before the read: %.1f GiB (the page cache can hold what is available), for a %s backlog.", float64(avail)/GiB, FormatSize(f.Bytes))
	}
	sampler := sampleRSS(ctx, s.Pid(), rssEvery)
	read, err := consumeAll(ctx, s, f.Topic, f.Records)
	samples, serr := sampler.stop()
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if serr != nil {
		return serr
	}
	after, hwmAfter, err := s.RSS()
	if err != nil {
		return err
	}
	if err := f.close(e, s); err != nil {
		return err
	}
	peak := after
	for _, v := range samples {
		peak = max(peak, v)
	}
	if hwmAfter > hwmBefore {
		peak = max(peak, hwmAfter)
	}
	series := rssSeries(samples, 24)
	e.Logf("VmRSS during the read, MiB: %s", series)
	e.Notef("VmRSS during the read, MiB: %s.", series)
	mib := func(b int64) float64 { return float64(b) / MiB }
	e.Figure(Figure{Name: "strom RSS peak", Value: mib(peak), Unit: "MiB", Versus: fmt.Sprintf("before + %s", FormatSize(backlogGrowthLimit)), Ratio: float64(peak) / float64(before+backlogGrowthLimit), Goal: AtMost,
		Note: fmt.Sprintf("%+.1f MiB over %.1f MiB before, reading %s; %d samples", mib(peak-before), mib(before), FormatSize(f.Bytes), len(samples))})
	// The criterion: no growth with the backlog. Whatever one fetch
	// costs is there early in the read; what grows with the backlog shows as
	// a later half above the first.
	if len(samples) >= 4 {
		h := len(samples) / 2
		first, second := slices.Max(samples[:h]), slices.Max(samples[h:])
		e.Figure(Figure{Name: "strom RSS 2nd/1st half", Value: float64(second) / float64(first), Unit: "x", Versus: "flat 1.1x", Ratio: float64(second) / float64(first) / 1.1, Goal: AtMost,
			Note: fmt.Sprintf("peak %.1f MiB in the second half of the read, %.1f MiB in the first", mib(second), mib(first))})
	}
	e.Figure(Figure{Name: "strom RSS before read", Value: mib(before), Unit: "MiB"})
	e.Figure(Figure{Name: "strom RSS after read", Value: mib(after), Unit: "MiB"})
	e.Figure(Figure{Name: "strom RSS peak/before", Value: float64(peak) / float64(before), Unit: "x"})
	e.Figure(Figure{Name: "strom read", Value: read.MBps(), Unit: "MB/s", Note: fmt.Sprintf("%s in %v", FormatSize(read.Bytes), read.Elapsed.Round(time.Millisecond))})
	costFigures(e, "strom", read)
	return nil
}

// rssSampler reads a process's VmRSS periodically, from its own goroutine,
// until stop.
type rssSampler struct {
	cancel  context.CancelFunc
	done    chan struct{}
	samples []int64 // written by the goroutine until done is closed
	err     error
}

// sampleRSS starts sampling pid's VmRSS every period, the first at once.
func sampleRSS(ctx context.Context, pid int, every time.Duration) *rssSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &rssSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			rss, _, err := procRSS(pid)
			if err != nil {
				s.err = err
				return
			}
			s.samples = append(s.samples, rss)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the samples, in order.
func (s *rssSampler) stop() ([]int64, error) {
	s.cancel()
	<-s.done
	return s.samples, s.err
}

// rssSeries prints at most n samples, evenly spaced, the last included,
// in MiB.
func rssSeries(samples []int64, n int) string {
	if len(samples) == 0 {
		return "none"
	}
	step := max(1, (len(samples)+n-1)/n)
	var out []string
	for i := 0; i < len(samples); i += step {
		out = append(out, fmt.Sprintf("%.0f", float64(samples[i])/MiB))
	}
	if (len(samples)-1)%step != 0 {
		out = append(out, fmt.Sprintf("%.0f", float64(samples[len(samples)-1])/MiB))
	}
	return fmt.Sprintf("%s (every %v)", strings.Join(out, ", "), time.Duration(step)*rssEvery)
}

// memAvailable is MemAvailable from /proc/meminfo: memory the kernel can
// give without swapping, page cache included.
func memAvailable() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("/proc/meminfo: no MemAvailable in kB")
}
