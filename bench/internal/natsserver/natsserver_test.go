package natsserver

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad arguments are refused before any server starts.
func TestMainRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-port", "0"}, "-store-dir is required"},
		{[]string{"-store-dir", t.TempDir(), "-sync", "sometimes"}, `-sync "sometimes"`},
		{[]string{"-store-dir", t.TempDir(), "extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: printed %q", tc.args, stdout.String())
		}
	}
}

// A cancelled context stops a running server cleanly: exit 0 after it
// said where it listened, in each sync mode.
func TestMainServesUntilCancelled(t *testing.T) {
	for _, sync := range []string{SyncDefault, SyncAlways} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Main starts, reports, and then sees the cancellation.
		var stdout, stderr bytes.Buffer
		if code := Main(ctx, []string{"-store-dir", t.TempDir(), "-sync", sync}, &stdout, &stderr); code != 0 {
			t.Fatalf("sync %s: exit %d: %s", sync, code, stderr.String())
		}
		for _, want := range []string{"nats listening on nats://127.0.0.1:", "sync " + sync, "natsserver: stopped"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("sync %s: stdout %q lacks %q", sync, stdout.String(), want)
			}
		}
	}
}
