package console

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// HostGuard refuses requests whose Host header names a host the server was
// not told it answers to: the defence against DNS rebinding. A page on
// evil.example whose name an attacker re-points at 127.0.0.1 (or at a
// broker on the local network) is same-origin with itself, so the browser
// lets it send anything and read every answer; only the Host header, which
// still says evil.example, tells the request apart from the console's own.
// The Origin check (for CSRF) cannot: the page's Origin and Host agree.
//
// Allowed, whatever the configuration:
//   - localhost (the name browsers resolve to loopback themselves);
//   - any IP address literal (127.0.0.1, [::1], 10.1.2.3): a rebinding
//     page's Host is always its own name, never an address, so an address
//     in Host means the client dialled the address itself. This keeps
//     Prometheus scrapes and probes by address working;
//   - the host of the listen address when it is a name (--http-addr
//     strom.internal:8080);
//   - the configured names (--http-allowed-hosts, http.allowed.hosts).
//
// "*" among the names allows every host and turns the guard off (unsafe:
// only behind a proxy that checks Host itself). A request without a Host
// (HTTP/1.0) passes: browsers always send one.
type HostGuard struct {
	any   bool
	names map[string]bool
}

// NewHostGuard builds the guard of a server listening on listenAddr
// (host:port; "" or an unspecified address adds nothing) that also answers
// to names.
func NewHostGuard(listenAddr string, names []string) *HostGuard {
	g := &HostGuard{names: map[string]bool{"localhost": true}}
	if h, _, err := net.SplitHostPort(listenAddr); err == nil && h != "" {
		g.names[normalHost(h)] = true
	}
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case n == "*":
			g.any = true
		case n != "":
			g.names[normalHost(n)] = true
		}
	}
	return g
}

// normalHost is a host name compared case-insensitively, without the
// trailing dot of a fully qualified name.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// Allowed reports whether a request with this Host header (host[:port])
// may proceed.
func (g *HostGuard) Allowed(hostHeader string) bool {
	if g.any || hostHeader == "" {
		return true
	}
	h := hostHeader
	if hh, _, err := net.SplitHostPort(hostHeader); err == nil {
		h = hh
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return g.names[normalHost(h)]
}

// Wrap refuses the requests Allowed refuses with 403 and a JSON error
// (code host_not_allowed), and passes the others to h.
func (g *HostGuard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Allowed(r.Host) {
			writeError(w, &apiError{Status: http.StatusForbidden, Code: "host_not_allowed",
				Msg: fmt.Sprintf("Host %q refused: this server answers to localhost, IP addresses and the names given with "+
					"--http-allowed-hosts (a guard against DNS rebinding)", r.Host)})
			return
		}
		h.ServeHTTP(w, r)
	})
}
