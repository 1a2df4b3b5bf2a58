package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Limits from the issue for 10,000 partitions.
const (
	createManyLimit   = 10 * time.Second
	metadataManyLimit = 20 * time.Millisecond
	// visibleTimeout bounds the wait for created partitions to show in
	// Metadata.
	visibleTimeout = time.Minute
)

// manyResult is one broker's measurement.
type manyResult struct {
	Partitions int           // created: all asked for, unless Short
	Short      error         // why creation stopped early
	Created    time.Duration // first CreateTopics sent to the last answered
	Visible    time.Duration // first CreateTopics sent to a Metadata listing every partition
	// CreateCPU is the broker's CPU time over Visible: far less than
	// Visible means creating waits on the disk.
	CreateCPU time.Duration
	Files     int // the broker's open files once all are created
	Metadata  latencies
	Raw       latencies // the same requests on a connection of the harness's own, no kgo
	Version   int16     // of the Metadata requests kgo sent
	Bytes     int       // of one Metadata response's body
	RSS       int64     // VmRSS after the Metadata requests
}

// runPartitions10k creates ManyPartitions partitions on a new broker and
// times it, then times MetadataRequests all-topics Metadata requests one
// after another; Strom against the limits, kfake for context.
func runPartitions10k(ctx context.Context, e *Env) error {
	cfg := e.Config()
	ts := topicSet{Prefix: "many", Partitions: cfg.ManyPartitions}
	e.Notef("Creation: %s, through one kgo client already connected; timed from the first request to the last answer, and to the first all-topics Metadata that lists every partition with a leader.", ts.describe())
	e.Notef("Raw: the same number of requests, Metadata v%d (the last version with a fixed-size response header), on a TCP connection of the harness's own, each timed from the write to its response decoded by kmsg: the broker's share without kgo's.", rawMetadataVersion)
	e.Notef("Metadata: %d all-topics Metadata requests (null topic list) through kgo.Client.Request on that client, one at a time after 3 untimed ones, each timed from the call to its return (so including kgo's decoding and its update of its metadata cache); every response must list every partition.",
		cfg.MetadataRequests)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		e.Notef("Open files: the brokers inherit the harness's limit, %d (hard %d). When the files a broker holds per partition so far project past its limit, creation stops there and the scenario fails, reporting what it measured on the partitions made.", lim.Cur, lim.Max)
	}
	res := map[string]manyResult{}
	for _, k := range []Kind{Strom, Kfake} {
		r, err := manyPartitionsOnce(ctx, e, k, ts, cfg.MetadataRequests)
		if err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
		e.Logf("%s: created in %v, visible in %v; Metadata v%d of %s: %s", k.Name, r.Created.Round(time.Millisecond), r.Visible.Round(time.Millisecond), r.Version, FormatSize(int64(r.Bytes)), r.Metadata.summary())
		res[k.Name] = r
	}
	s, f := res[Strom.Name], res[Kfake.Name]
	create := Figure{Name: "strom create", Value: s.Visible.Seconds(), Unit: "s", Versus: "limit 10 s", Ratio: s.Visible.Seconds() / createManyLimit.Seconds(), Goal: AtMost,
		Note: fmt.Sprintf("%d partitions, %.0f/s; all CreateTopics answered after %v, broker CPU %v, %d open files after; kfake %v",
			s.Partitions, float64(s.Partitions)/s.Visible.Seconds(), s.Created.Round(time.Millisecond), s.CreateCPU, s.Files, f.Visible.Round(time.Millisecond))}
	p99 := Figure{Name: "strom metadata p99", Value: ms(s.Metadata.q(0.99)), Unit: "ms", Versus: "limit 20 ms", Ratio: float64(s.Metadata.q(0.99)) / float64(metadataManyLimit), Goal: AtMost,
		Note: fmt.Sprintf("%s; kfake p99 %.2f", s.Metadata.summary(), ms(f.Metadata.q(0.99)))}
	if s.Short != nil {
		// Fewer partitions than the limits are for: no verdict.
		short := fmt.Sprintf("ONLY %d of %d partitions, see the error; ", s.Partitions, ts.Partitions)
		create.Versus, create.Note = "", short+create.Note
		p99.Versus, p99.Note = "", short+p99.Note
	}
	e.Figure(create)
	e.Figure(Figure{Name: "strom metadata p50", Value: ms(s.Metadata.q(0.5)), Unit: "ms", Note: fmt.Sprintf("Metadata v%d, %s response; kfake %.2f", s.Version, FormatSize(int64(s.Bytes)), ms(f.Metadata.q(0.5)))})
	e.Figure(p99)
	e.Figure(Figure{Name: "strom metadata raw p99", Value: ms(s.Raw.q(0.99)), Unit: "ms",
		Note: fmt.Sprintf("Metadata v%d on a plain connection, decoded with kmsg, no kgo client: %s; kfake p99 %.2f", rawMetadataVersion, s.Raw.summary(), ms(f.Raw.q(0.99)))})
	e.Figure(Figure{Name: "strom RSS", Value: float64(s.RSS) / MiB, Unit: "MiB", Note: fmt.Sprintf("after the Metadata requests; kfake %.1f MiB", float64(f.RSS)/MiB)})
	if s.Short != nil {
		return fmt.Errorf("strom: %w", s.Short)
	}
	return nil
}

// errFileLimit is a broker that would run out of open files before
// holding every partition asked for.
var errFileLimit = errors.New("out of open files")

// manyPartitionsOnce measures a new broker of kind k.
func manyPartitionsOnce(ctx context.Context, e *Env, k Kind, ts topicSet, requests int) (manyResult, error) {
	srv, err := e.Start(ctx, k)
	if err != nil {
		return manyResult{}, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.ClientID("strombench"))
	if err != nil {
		return manyResult{}, err
	}
	defer cl.Close()
	// Connected, versions known: creation is timed from its first request.
	all := kmsg.NewPtrMetadataRequest() // nil Topics: every topic
	none := kmsg.NewPtrMetadataRequest()
	none.Topics = []kmsg.MetadataRequestTopic{}
	if _, err := none.RequestWith(ctx, cl); err != nil {
		return manyResult{}, err
	}

	var r manyResult
	files0, _, err := procFDs(srv.Pid())
	if err != nil {
		return manyResult{}, err
	}
	limit := procFileLimit(srv.Pid())
	// fits stops the creation when what the broker holds per partition so
	// far would take it past its open-file limit: it would fail anyway, a
	// minute later, without saying why.
	fits := func(created int) error {
		r.Partitions = created
		files, _, err := procFDs(srv.Pid())
		if err != nil || limit <= 0 {
			return err
		}
		per := float64(files-files0) / float64(created)
		if need := files0 + int(per*float64(ts.Partitions)); need > limit-limit/50 {
			return fmt.Errorf("%w: after %d partitions %s holds %d open files, %.1f per partition; %d partitions need about %d, over its limit of %d",
				errFileLimit, created, k.Name, files, per, ts.Partitions, need, limit)
		}
		return nil
	}
	m, err := startCPU(srv)
	if err != nil {
		return manyResult{}, err
	}
	start := time.Now()
	switch err := ts.create(ctx, kadm.NewClient(cl), fits); {
	case errors.Is(err, errFileLimit):
		r.Short = err
	case err != nil:
		return manyResult{}, fmt.Errorf("%w%s", err, filesNote(srv.Pid()))
	}
	r.Created = time.Since(start)
	for deadline := start.Add(visibleTimeout); ; {
		resp, err := all.RequestWith(ctx, cl)
		if err != nil {
			return manyResult{}, err
		}
		if got := ts.served(resp); got == r.Partitions {
			break
		} else if time.Now().After(deadline) {
			return manyResult{}, fmt.Errorf("Metadata lists %d of %d partitions %v after creating them", got, r.Partitions, visibleTimeout)
		}
		select {
		case <-ctx.Done():
			return manyResult{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	r.Visible = time.Since(start)
	if _, _, r.CreateCPU, err = m.stop(); err != nil {
		return manyResult{}, err
	}
	if r.Files, _, err = procFDs(srv.Pid()); err != nil {
		return manyResult{}, err
	}

	lat := make([]time.Duration, 0, requests)
	var last *kmsg.MetadataResponse
	for i := -3; i < requests; i++ {
		t := time.Now()
		resp, err := all.RequestWith(ctx, cl)
		d := time.Since(t)
		if err != nil {
			return manyResult{}, err
		}
		if got := ts.served(resp); got != r.Partitions {
			return manyResult{}, fmt.Errorf("Metadata lists %d of %d partitions", got, r.Partitions)
		}
		if i >= 0 {
			lat = append(lat, d)
		}
		last = resp
	}
	r.Version, r.Bytes = last.GetVersion(), len(last.AppendTo(nil))
	r.Metadata = sortLatencies(lat)
	if r.Raw, err = rawMetadataLatencies(ctx, srv.Addr, ts, r.Partitions, requests); err != nil {
		return manyResult{}, err
	}
	if r.RSS, _, err = srv.RSS(); err != nil {
		return manyResult{}, err
	}
	return r, e.Stop(srv)
}

// rawMetadataVersion is the newest Metadata version roundTrip can read.
const rawMetadataVersion = 8

// rawMetadataLatencies times n all-topics Metadata requests, after 3
// untimed ones, on a connection of its own, checking that each lists the
// partitions created of ts.
func rawMetadataLatencies(ctx context.Context, addr string, ts topicSet, partitions, n int) (latencies, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	lat := make([]time.Duration, 0, n)
	for i := -3; i < n; i++ {
		req := kmsg.NewPtrMetadataRequest() // nil Topics: every topic
		req.SetVersion(rawMetadataVersion)
		resp := kmsg.NewPtrMetadataResponse()
		t := time.Now()
		if err := roundTrip(conn, req, resp, int32(i+10)); err != nil {
			return nil, fmt.Errorf("raw Metadata: %w", err)
		}
		took := time.Since(t)
		if got := ts.served(resp); got != partitions {
			return nil, fmt.Errorf("raw Metadata lists %d of %d partitions", got, partitions)
		}
		if i >= 0 {
			lat = append(lat, took)
		}
	}
	return sortLatencies(lat), nil
}
