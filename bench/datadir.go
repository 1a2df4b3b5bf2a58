package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Brokers on a data directory that outlives them: a restart on the same
// data, and a filled log that more than one scenario of a run reads.

// StopKeepingData stops a broker as Stop does (SIGTERM, a clean exit) but
// leaves its data directory in place, for a broker started on it again.
func (e *Env) StopKeepingData(s *Server) error {
	e.running = slices.DeleteFunc(e.running, func(r *Server) bool { return r == s })
	return s.Stop()
}

// Restart stops s cleanly, keeping its data directory, and starts the same
// program on that directory again; the new Server's Ready is the time from
// this exec to its first answer, on data the broker has to open. Its output
// goes to a log file of its own, next to the data directory.
func (e *Env) Restart(ctx context.Context, s *Server) (*Server, error) {
	if err := e.StopKeepingData(s); err != nil {
		return nil, err
	}
	return e.startOn(ctx, s.kind, s.prog, s.DataDir)
}

// startOn starts prog as a broker of kind on dataDir as it is, empty or
// not; Stop removes the directory, StopKeepingData does not.
func (e *Env) startOn(ctx context.Context, kind Kind, prog Program, dataDir string) (*Server, error) {
	e.seq++
	s, err := startServer(ctx, kind, prog, dataDir, fmt.Sprintf("%s.%d.log", dataDir, e.seq))
	if err != nil {
		return nil, err
	}
	e.running = append(e.running, s)
	return s, nil
}

// filledLog is Strom data directory holding one topic of
// filledPartitions partitions of 1 KiB records, written once per run and
// size and read by the scenarios that need a large log (restart, backlog):
// filling 10 GiB takes most of a minute, so they share it. It lives in the
// run's directory, beside the scenarios' own, and goes with it.
//
// manifest.json beside the data says what was written and exists only
// while no broker runs on the data and the data is complete: it is written
// after the filling broker's clean stop and removed before any broker is
// started on it again (openFilled), so a scenario that fails midway leaves
// no manifest and the next one fills anew.
type filledLog struct {
	Topic       string
	Partitions  int32
	RecordBytes int
	Records     int64
	Bytes       int64           // record values
	End         map[int32]int64 // each partition's end offset after the fill
	Fill        throughput      `json:"-"` // the fill's own figures; zero when reused
	Reused      bool            `json:"-"` // filled earlier in the run, by another scenario

	root string
}

const (
	filledPartitions = 100
	filledTopic      = "bench-filled"
	manifestName     = "manifest.json"
)

// dataDir is where the broker keeps the filled log.
func (f *filledLog) dataDir() string { return filepath.Join(f.root, "data") }

// describe is how the data was made, for the notes of a report.
func (f *filledLog) describe(spec produceSpec) string {
	how := fmt.Sprintf("written in %v (%.0f MB/s) by one producer (%s)", f.Fill.Elapsed.Round(time.Millisecond), f.Fill.MBps(), spec.describe())
	if f.Reused {
		how = "written earlier in this run by another scenario, with the same producer settings"
	}
	return fmt.Sprintf("%d records (%s of values) in topic %s, %d partitions, %s", f.Records, FormatSize(f.Bytes), f.Topic, f.Partitions, how)
}

// filledSpec is the producer that fills the log: produce-1k-acks1's, on
// filledPartitions partitions.
func filledSpec() produceSpec {
	return produceSpec{RecordBytes: 1024, Partitions: filledPartitions, Acks: kgo.LeaderAck(), Producers: 1}
}

// filled returns a Strom data directory holding size bytes of records,
// written by this call or, for the same size, earlier in the run. No broker
// runs on it when it returns.
func (e *Env) filled(ctx context.Context, size int64) (*filledLog, error) {
	spec := filledSpec()
	f := &filledLog{root: filepath.Join(filepath.Dir(e.dir), "shared", fmt.Sprintf("strom-%dp-%s", spec.Partitions, FormatSize(size)))}
	switch b, err := os.ReadFile(filepath.Join(f.root, manifestName)); {
	case err == nil:
		if err := json.Unmarshal(b, f); err != nil {
			return nil, fmt.Errorf("%s: %w", f.root, err)
		}
		f.Reused = true
		e.Logf("reusing %s of records in %d partitions written earlier in the run", FormatSize(f.Bytes), f.Partitions)
		return f, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	// A fill that failed midway left no manifest: start again from nothing.
	if err := os.RemoveAll(f.root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(f.dataDir(), 0o755); err != nil {
		return nil, err
	}
	// The fill needs size, plus the indexes and some room for whatever
	// else is writing to this disk.
	if err := checkFree(f.root, size+size/20+GiB); err != nil {
		return nil, err
	}
	f.Topic, f.Partitions, f.RecordBytes = filledTopic, spec.Partitions, spec.RecordBytes
	f.Records = size / int64(spec.RecordBytes)
	s, err := e.startOn(ctx, Strom, e.cfg.Strom, f.dataDir())
	if err != nil {
		return nil, err
	}
	e.Logf("filling %s across %d partitions", FormatSize(f.Records*int64(spec.RecordBytes)), spec.Partitions)
	if f.Fill, err = fill(ctx, s, f.Topic, spec, f.Records); err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	f.Bytes = f.Fill.Bytes
	e.Logf("filled %s in %v (%.1f MB/s)", FormatSize(f.Bytes), f.Fill.Elapsed.Round(time.Millisecond), f.Fill.MBps())
	if f.End, err = endOffsets(ctx, s.Addr, f.Topic); err != nil {
		return nil, err
	}
	if err := f.close(e, s); err != nil {
		return nil, err
	}
	return f, nil
}

// open starts Strom on the filled data, taking its manifest away until
// close.
func (f *filledLog) open(ctx context.Context, e *Env) (*Server, error) {
	if err := os.Remove(filepath.Join(f.root, manifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return e.startOn(ctx, Strom, e.cfg.Strom, f.dataDir())
}

// close stops the broker on the filled data cleanly and writes the
// manifest, so that another scenario can use the data.
func (f *filledLog) close(e *Env, s *Server) error {
	if err := e.StopKeepingData(s); err != nil {
		return err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(f.root, manifestName), b, 0o644)
}

// check compares the broker's end offsets of the filled topic with those
// recorded after the fill.
func (f *filledLog) check(ctx context.Context, addr string) error {
	got, err := endOffsets(ctx, addr, f.Topic)
	if err != nil {
		return err
	}
	if len(got) != len(f.End) {
		return fmt.Errorf("%s: %d partitions listed, %d written", f.Topic, len(got), len(f.End))
	}
	for p, want := range f.End {
		if got[p] != want {
			return fmt.Errorf("%s[%d]: end offset %d, was %d before the restart", f.Topic, p, got[p], want)
		}
	}
	return nil
}

// endOffsets lists the end offset of every partition of topic.
func endOffsets(ctx context.Context, addr, topic string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("strombench-admin"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// checkFree fails when the file system of dir has less than need bytes
// available to us.
func checkFree(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if avail := int64(st.Bavail) * int64(st.Bsize); avail < need {
		return fmt.Errorf("%s has %.1f GiB available, the fill needs %.1f GiB: choose a smaller -restart-size/-backlog-size or another -dir",
			dir, float64(avail)/GiB, float64(need)/GiB)
	}
	return nil
}
