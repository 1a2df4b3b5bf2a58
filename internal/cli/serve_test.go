package cli

import (
	"os"
	"testing"
)

// TestHTTPListenerDefaults: the console has no login, so serve and console
// listen on loopback unless told otherwise (they listened on every
// interface, :8080), and the profiler is off.
func TestHTTPListenerDefaults(t *testing.T) {
	for _, env := range []string{"STROM_HTTP_ADDR", "STROM_HTTP_ALLOWED_HOSTS", "STROM_PPROF"} {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	serve, console := withDemo(newServeCmd()), newConsoleCmd()
	for _, c := range []struct {
		cmd, flag, want string
	}{
		{"serve", "http-addr", "127.0.0.1:8080"},
		{"serve", "http-allowed-hosts", "[]"},
		{"serve", "pprof", "false"},
		{"console", "http-addr", "127.0.0.1:8080"},
		{"console", "http-allowed-hosts", "[]"},
	} {
		cmd := serve
		if c.cmd == "console" {
			cmd = console
		}
		f := cmd.Flags().Lookup(c.flag)
		if f == nil {
			t.Errorf("%s has no --%s", c.cmd, c.flag)
			continue
		}
		if f.DefValue != c.want {
			t.Errorf("%s --%s defaults to %q, want %q", c.cmd, c.flag, f.DefValue, c.want)
		}
	}
}
