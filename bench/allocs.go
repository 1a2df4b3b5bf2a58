package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StromMetered is Strom with its HTTP listener on a free loopback port, so
// that a scenario can read the Go runtime's allocation counters from
// /metrics (the broker's Prometheus Go collector) around its measured
// window. The listener also serves the console; nobody opens it during a
// run.
var StromMetered = Kind{Name: Strom.Name, Protocol: Kafka, Ready: probe, Args: func(addr, dataDir string) []string {
	args := Strom.Args(addr, dataDir)
	port, err := freePort()
	if err != nil {
		return args // the broker then runs without metrics, and the figure says so
	}
	return append(args[:len(args)-2], "--http-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}}

// httpAddr is the broker's HTTP listener, from its command line; "" when
// it has none.
func (s *Server) httpAddr() string {
	args := s.cmd.Args
	for i := len(args) - 2; i >= 0; i-- {
		if args[i] == "--http-addr" && args[i+1] != "-" {
			return args[i+1]
		}
	}
	return ""
}

// goAllocs are the Go runtime's cumulative allocation counters of a
// broker: heap objects allocated (runtime/metrics /gc/heap/allocs:objects,
// go_memstats_mallocs_total) and their bytes.
type goAllocs struct {
	Objects, Bytes float64
}

// readAllocs reads srv's allocation counters from its /metrics; ok is false
// for a broker without an HTTP listener.
func readAllocs(ctx context.Context, srv *Server) (a goAllocs, ok bool, err error) {
	addr := srv.httpAddr()
	if addr == "" {
		return goAllocs{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return goAllocs{}, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return goAllocs{}, false, fmt.Errorf("%s /metrics: %w", srv.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return goAllocs{}, false, fmt.Errorf("%s /metrics: %s", srv.Name, resp.Status)
	}
	var found int
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		var dst *float64
		switch name {
		case "go_memstats_mallocs_total":
			dst = &a.Objects
		case "go_memstats_alloc_bytes_total":
			dst = &a.Bytes
		default:
			continue
		}
		if *dst, err = strconv.ParseFloat(value, 64); err != nil {
			return goAllocs{}, false, fmt.Errorf("%s /metrics: %s: %w", srv.Name, name, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return goAllocs{}, false, err
	}
	if found != 2 {
		return goAllocs{}, false, fmt.Errorf("%s /metrics: no go_memstats_mallocs_total or go_memstats_alloc_bytes_total", srv.Name)
	}
	return a, true, nil
}
