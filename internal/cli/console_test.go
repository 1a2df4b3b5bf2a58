package cli

import (
	"os"
	"testing"
)

// TestConsoleListenerDefaults: the console has no login, so it listens on
// loopback unless told otherwise (it listened on every interface, :8080).
// cmd/strom/servecmd checks serve's.
func TestConsoleListenerDefaults(t *testing.T) {
	for _, env := range []string{"STROM_HTTP_ADDR", "STROM_HTTP_ALLOWED_HOSTS", "STROM_PPROF"} {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	console := newConsoleCmd()
	for _, c := range []struct {
		cmd, flag, want string
	}{
		{"console", "http-addr", "127.0.0.1:8080"},
		{"console", "http-allowed-hosts", "[]"},
	} {
		f := console.Flags().Lookup(c.flag)
		if f == nil {
			t.Errorf("%s has no --%s", c.cmd, c.flag)
			continue
		}
		if f.DefValue != c.want {
			t.Errorf("%s --%s defaults to %q, want %q", c.cmd, c.flag, f.DefValue, c.want)
		}
	}
}
