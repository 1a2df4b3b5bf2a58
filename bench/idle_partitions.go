package bench

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idlePartitionsRSSLimit is the limit for a broker holding 1,000
// partitions and 100 client connections, idle.
const idlePartitionsRSSLimit = 150 * MiB

// runIdlePartitions starts a broker, creates IdlePartitions partitions,
// opens IdleConns client connections that each made the requests a client
// starts with, and reads the broker's resident set Settle later. Strom's
// is judged against the limit, kfake's (measured the same way) is context.
func runIdlePartitions(ctx context.Context, e *Env) error {
	cfg := e.Config()
	ts := topicSet{Prefix: "idle", Partitions: cfg.IdlePartitions}
	e.Notef("Partitions: %s.", ts.describe())
	e.Notef("Connections: %d TCP connections from the harness, each having sent ApiVersions v0 and an all-topics Metadata v1 (as a client's bootstrap does) and then nothing; "+
		"VmRSS read %v after the last was answered; the broker's open sockets (its listener included) counted from /proc/<pid>/fd; "+
		"afterwards every connection must still answer an ApiVersions.", cfg.IdleConns, cfg.Settle)
	type reading struct {
		rss, peak int64
		sockets   int
		created   time.Duration
	}
	measure := func(k Kind) (reading, error) {
		srv, err := e.Start(ctx, k)
		if err != nil {
			return reading{}, err
		}
		cl, err := adminClient(srv.Addr)
		if err != nil {
			return reading{}, err
		}
		start := time.Now()
		err = ts.create(ctx, kadm.NewClient(cl), nil)
		cl.Close()
		if err != nil {
			return reading{}, fmt.Errorf("%w%s", err, filesNote(srv.Pid()))
		}
		r := reading{created: time.Since(start)}
		conns, err := openIdleConns(ctx, srv.Addr, cfg.IdleConns, ts)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		if err != nil {
			return reading{}, err
		}
		select {
		case <-time.After(cfg.Settle):
		case <-ctx.Done():
			return reading{}, ctx.Err()
		}
		if r.rss, r.peak, err = srv.RSS(); err != nil {
			return reading{}, err
		}
		if _, r.sockets, err = procFDs(srv.Pid()); err != nil {
			return reading{}, err
		}
		if r.sockets < cfg.IdleConns {
			return reading{}, fmt.Errorf("%d sockets open in the broker, %d connections made", r.sockets, cfg.IdleConns)
		}
		for i, c := range conns {
			if err := idleAlive(c); err != nil {
				return reading{}, fmt.Errorf("connection %d after %v idle: %w", i, cfg.Settle, err)
			}
		}
		return r, e.Stop(srv)
	}
	s, err := measure(Strom)
	if err != nil {
		return fmt.Errorf("strom: %w", err)
	}
	e.Figure(Figure{Name: "strom RSS", Value: float64(s.rss) / MiB, Unit: "MiB", Versus: "limit 150 MiB", Ratio: float64(s.rss) / idlePartitionsRSSLimit, Goal: AtMost,
		Note: fmt.Sprintf("%d partitions, %d connections (%d sockets open); peak %.1f MiB; partitions created in %v",
			cfg.IdlePartitions, cfg.IdleConns, s.sockets, float64(s.peak)/MiB, s.created.Round(time.Millisecond))})
	f, err := measure(Kfake)
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	e.Figure(Figure{Name: "kfake RSS", Value: float64(f.rss) / MiB, Unit: "MiB",
		Note: fmt.Sprintf("%d sockets open; peak %.1f MiB; partitions created in %v", f.sockets, float64(f.peak)/MiB, f.created.Round(time.Millisecond))})
	return nil
}

// idleTimeout bounds each request of an idle connection.
const idleTimeout = 10 * time.Second

// openIdleConns opens n connections to addr, each of which makes a
// client's first two requests, ApiVersions and an all-topics Metadata, and
// checks that the Metadata lists every partition of ts. It returns the
// connections opened so far even on error: the caller closes them.
func openIdleConns(ctx context.Context, addr string, n int, ts topicSet) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
		if err := c.SetDeadline(time.Now().Add(idleTimeout)); err != nil {
			return conns, err
		}
		versions := kmsg.NewPtrApiVersionsRequest()
		versions.SetVersion(0)
		vr := kmsg.NewPtrApiVersionsResponse()
		if err := roundTrip(c, versions, vr, 1); err != nil {
			return conns, fmt.Errorf("ApiVersions: %w", err)
		}
		meta := kmsg.NewPtrMetadataRequest() // nil Topics: all of them
		meta.SetVersion(1)
		mr := kmsg.NewPtrMetadataResponse()
		if err := roundTrip(c, meta, mr, 2); err != nil {
			return conns, fmt.Errorf("Metadata: %w", err)
		}
		if got := ts.served(mr); got != ts.Partitions {
			return conns, fmt.Errorf("Metadata lists %d of the %d partitions", got, ts.Partitions)
		}
		if err := c.SetDeadline(time.Time{}); err != nil {
			return conns, err
		}
	}
	return conns, nil
}

// idleAlive checks that an idle connection still answers.
func idleAlive(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(idleTimeout)); err != nil {
		return err
	}
	versions := kmsg.NewPtrApiVersionsRequest()
	versions.SetVersion(0)
	vr := kmsg.NewPtrApiVersionsResponse()
	if err := roundTrip(c, versions, vr, 3); err != nil {
		return err
	}
	if err := kerr.ErrorForCode(vr.ErrorCode); err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	return nil
}
