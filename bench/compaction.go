package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/storage/vfs/diskbench"
)

// The compaction scenario (issue 20): the log cleaner's throughput on a
// dirty log with 10% live keys, against what the disk allows for the same
// bytes read and written, measured in the same run; and produce to a
// topic with compression.type=zstd against compression.type=producer.

const (
	compactTopic       = "compact-bench"
	compactRecordBytes = 1024
	compactLiveShare   = 10 // percent of the records whose key is the last of its key
	compactSegment     = 64 << 20
)

// runCompaction writes -size bytes of 1 KiB records to one
// partition of a compacted topic, keys drawn so that 10% of the records
// are live, rolls the active segment by a new, tiny one (segment.ms), and
// waits until the cleaner has cleaned every sealed segment, reading its
// own figures from /metrics: bytes read and written, pass durations.
func runCompaction(ctx context.Context, e *Env) error {
	cfg := e.Config()
	size := cfg.Size
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	kind := Strom
	kind.Args = func(addr, dataDir string) []string {
		return append(Strom.Args(addr, dataDir), "--http-addr", httpAddr, "--set", "log.cleaner.backoff.ms=100")
	}
	e.seq++
	dir := filepath.Join(e.Dir(), fmt.Sprintf("strom-compact-%d", e.seq))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s, err := startServer(ctx, kind, e.cfg.Strom, dir, dir+".log")
	if err != nil {
		return err
	}
	e.running = append(e.running, s)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr), kgo.DefaultProduceTopic(compactTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(produceLinger), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	configs := map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr(strconv.Itoa(compactSegment)),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.5"),
		// Nothing cleaned while the log is written: the pass timed is one
		// pass over the whole dirty log.
		"min.compaction.lag.ms": kadm.StringPtr("3600000"),
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, configs, compactTopic); err != nil || r.Err != nil {
		return fmt.Errorf("create %s: %v %v", compactTopic, err, r.Err)
	}
	n := size / compactRecordBytes
	keys := n * compactLiveShare / 100
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, compactRecordBytes-16)
	start := time.Now()
	// Every key once in the last tenth (so exactly keys records are
	// live), random keys before it.
	for i := int64(0); i < n; i++ {
		k := rng.Int64N(keys)
		if i >= n-keys {
			k = i - (n - keys)
		}
		key := make([]byte, 16)
		binary.BigEndian.PutUint64(key, uint64(k))
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		cl.Produce(ctx, &kgo.Record{Key: key, Value: append([]byte(nil), value...)}, func(_ *kgo.Record, perr error) {
			if perr != nil && err == nil {
				err = perr
			}
		})
	}
	if ferr := cl.Flush(ctx); ferr != nil || err != nil {
		return fmt.Errorf("produce: %v %v", ferr, err)
	}
	wrote := time.Since(start)
	// Roll: a small segment.ms seals the active segment at the next append.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.ms", Value: kadm.StringPtr("1")},
		{Op: kadm.SetConfig, Name: "min.compaction.lag.ms", Value: kadm.StringPtr("0")},
	}, compactTopic); err != nil {
		return err
	}
	time.Sleep(5 * time.Millisecond) // let the 1 ms segment.ms pass: a timer, not a state
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("roll"), Value: []byte("x")}).FirstErr(); err != nil {
		return err
	}
	// Wait for the cleaner to leave nothing dirty below the active segment.
	var m map[string]float64
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if m, err = scrape(ctx, httpAddr); err != nil {
			return err
		}
		if m["strom_log_cleaner_read_bytes_total"] >= float64(size)*0.95 && m[`strom_partition_cleaner_dirty_ratio{partition="0",topic="`+compactTopic+`"}`] < 0.01 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cleaner not done in 10 minutes: %v", m)
		}
		time.Sleep(100 * time.Millisecond) // polling the broker's metrics
	}
	in, out := m["strom_log_cleaner_read_bytes_total"], m["strom_log_cleaner_written_bytes_total"]
	passes := m["strom_log_cleaner_passes_total"]
	secs := m[`strom_partition_cleaner_last_clean_duration_seconds{partition="0",topic="`+compactTopic+`"}`]
	if passes != 1 {
		// Only the last pass's duration is exported per partition, so
		// the rate is right for one pass only.
		return fmt.Errorf("the cleaner ran %.0f passes, want one (the key map too small for %d keys?)", passes, keys)
	}
	// The disk's limit for the same work: read in bytes, write out bytes
	// (both measured here, in this run).
	readBps, writeBps, err := diskReadWrite(e.Dir(), int64(in))
	if err != nil {
		return err
	}
	limit := in / (in/readBps + out/writeBps)
	rate := in / secs
	e.Notef("Compaction: %s of %d-byte records (%d keys, %d%% live) written to one partition (segment.bytes %s, acks=1) in %v, the active segment rolled; "+
		"then the cleaner's own counters from /metrics (bytes read and written, the pass's duration). The limit is the disk reading the bytes the cleaner read "+
		"and writing the bytes it wrote, sequentially (1 MiB reads of a just-written file, so from the page cache as the cleaner's are; 1 MiB writes and one fdatasync), measured after.",
		FormatSize(size), compactRecordBytes, keys, compactLiveShare, FormatSize(compactSegment), wrote.Round(time.Millisecond))
	e.Figure(Figure{Name: "strom cleaner", Value: rate / MB, Unit: "MB/s", Versus: "disk read+write", Ratio: rate / limit,
		Note: fmt.Sprintf("%s read, %s written (%.3f of it) in %.2f s over %.0f pass(es); limit %.0f MB/s (read %.0f, write %.0f MB/s)",
			FormatSize(int64(in)), FormatSize(int64(out)), out/in, secs, passes, limit/MB, readBps/MB, writeBps/MB)})

	// Broker-side recompression: the same uncompressed 1 KiB records to a
	// topic with compression.type=producer and one with zstd, alternated.
	var rates [2][]float64
	for round := range max(cfg.Rounds, 1) {
		for i, codec := range []string{"producer", "zstd"} {
			topic := fmt.Sprintf("codec-%s-%d", codec, round)
			if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": kadm.StringPtr(codec)}, topic); err != nil || r.Err != nil {
				return fmt.Errorf("create %s: %v %v", topic, err, r.Err)
			}
			mbps, err := produceValues(ctx, cl, topic, size/4, rng)
			if err != nil {
				return err
			}
			rates[i] = append(rates[i], mbps)
		}
	}
	plain, zstd := medianFloat(rates[0]), medianFloat(rates[1])
	e.Notef("Recompression: %s of uncompressed 1 KiB records (random bytes in half of each value, zeros in the rest: about 2:1 for zstd) produced with acks=1 to a topic with compression.type=producer and one with zstd, alternated, %d rounds, medians.",
		FormatSize(size/4), max(cfg.Rounds, 1))
	e.Figure(Figure{Name: "strom produce compression.type=zstd", Value: zstd, Unit: "MB/s", Versus: "compression.type=producer", Ratio: zstd / plain,
		Note: fmt.Sprintf("producer %.1f MB/s; rounds zstd %.1f, producer %.1f MB/s", plain, rates[1], rates[0])})
	return e.Stop(s)
}

// produceValues sends n bytes of 1 KiB records (half random, half zeros)
// to topic and returns MB/s of record values.
func produceValues(ctx context.Context, cl *kgo.Client, topic string, n int64, rng *rand.Rand) (float64, error) {
	var perr error
	start := time.Now()
	for sent := int64(0); sent < n; sent += compactRecordBytes {
		v := make([]byte, compactRecordBytes)
		for j := 0; j < compactRecordBytes/2; j += 8 {
			binary.LittleEndian.PutUint64(v[j:], rng.Uint64())
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil && perr == nil {
				perr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil || perr != nil {
		return 0, fmt.Errorf("produce to %s: %v %v", topic, err, perr)
	}
	return float64(n) / time.Since(start).Seconds() / MB, nil
}

// scrape reads the broker's /metrics as name{labels} -> value.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// diskReadWrite measures sequential write (diskbench) and then reading
// that file back in 1 MiB reads, in bytes/s.
func diskReadWrite(dir string, n int64) (read, write float64, err error) {
	n = max(n, 64<<20)
	if write, err = diskbench.MeasureSequentialWrite(dir, n, 1<<20); err != nil {
		return 0, 0, err
	}
	f, err := os.CreateTemp(dir, "readbench-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	for written := int64(0); written < n; written += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, 0, err
	}
	var got int64
	for {
		k, err := f.Read(buf)
		got += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return float64(got) / time.Since(start).Seconds(), write, nil
}

// freeAddr is a loopback address with a port free at the moment (freePort).
func freeAddr() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// medianFloat is the median of xs (the mean of the middle two for an even
// count).
func medianFloat(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + m) / 2
	}
	return m
}
