package servecmd

import (
	"os"
	"testing"
)

// TestHTTPListenerDefaults: the console has no login, so serve's HTTP
// listener is on loopback unless told otherwise (it listened on every
// interface, :8080), and the profiler is off.
func TestHTTPListenerDefaults(t *testing.T) {
	for _, env := range []string{"STROM_HTTP_ADDR", "STROM_HTTP_ALLOWED_HOSTS", "STROM_PPROF"} {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	serve := Commands()[0]
	for _, c := range []struct {
		cmd, flag, want string
	}{
		{"serve", "http-addr", "127.0.0.1:8080"},
		{"serve", "http-allowed-hosts", "[]"},
		{"serve", "pprof", "false"},
	} {
		f := serve.Flags().Lookup(c.flag)
		if f == nil {
			t.Errorf("%s has no --%s", c.cmd, c.flag)
			continue
		}
		if f.DefValue != c.want {
			t.Errorf("%s --%s defaults to %q, want %q", c.cmd, c.flag, f.DefValue, c.want)
		}
	}
}
