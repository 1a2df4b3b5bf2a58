package servecmd

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/testutil"
)

// TestServeLogsOneFormat (issue 23): everything serve writes, from start
// to a clean stop, demo included, is one slog record a line in the format
// --log-format asks for; before, "strom: kafka listening ..." lines on
// stdout mixed with key=value lines on stderr.
func TestServeLogsOneFormat(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var stdout, stderr testutil.SyncBuffer
			// --demo needs a fixed port: take a free one.
			port, err := testutil.FreeLoopbackPort()
			if err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			serve := Commands()[0]
			serve.SetArgs([]string{"--data-dir", t.TempDir(), "--kafka-addr", addr, "--http-addr", "127.0.0.1:0",
				"--demo", "--log-format", format})
			serve.SetOut(&stdout)
			serve.SetErr(&stderr)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- serve.ExecuteContext(ctx) }()
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(stderr.String(), "__consumer_offsets") { // the demo's group is running
				select {
				case err := <-done:
					t.Fatalf("serve ended: %v\n%s", err, stderr.String())
				default:
				}
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("no demo group after 30 s:\n%s", stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not stop")
			}
			if stdout.String() != "" {
				t.Errorf("stdout: %q, want nothing (logs go to stderr)", stdout.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			var msgs []string
			for _, l := range lines {
				var msg string
				if format == "json" {
					var rec map[string]any
					if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["level"] == nil || rec["time"] == nil {
						t.Errorf("not a JSON log record: %q", l)
						continue
					}
					msg, _ = rec["msg"].(string)
				} else {
					if !strings.HasPrefix(l, "time=") || !strings.Contains(l, " level=") || !strings.Contains(l, " msg=") {
						t.Errorf("not a key=value log record: %q", l)
						continue
					}
					msg = l
				}
				msgs = append(msgs, msg)
			}
			all := strings.Join(msgs, "\n")
			for _, want := range []string{"kafka listening", "web console, health and metrics", "shutting down", "stopped cleanly"} {
				if !strings.Contains(all, want) {
					t.Errorf("no %q record in:\n%s", want, stderr.String())
				}
			}
		})
	}
}
