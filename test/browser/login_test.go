package browser

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/metadata"
)

// TestConsoleLoginInBrowser (issue 21): a broker whose only Kafka listener
// is SASL_PLAINTEXT, with ACLs on, serves its console with a login. In
// Chromium (login.spec.mjs): the login form; a wrong password refused; a
// read-only user sees the topics but has no delete button, and the API
// refuses the delete (the broker's ACLs, through the user's own Kafka
// session); logout; an admin has the button; a form posted to the console
// from a page of another site is refused (cross_origin) and makes nothing.
func TestConsoleLoginInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped with -short")
	}
	node := requireBrowser(t)

	dir := t.TempDir()
	if _, err := broker.AddScram(dir, []string{
		"SCRAM-SHA-512=[name=admin,password=admin-pw]",
		"SCRAM-SHA-512=[name=reader,password=reader-pw]",
	}); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Props: map[string]string{
			"sasl.enabled.mechanisms": "SCRAM-SHA-512",
			"authorizer.class.name":   "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"super.users":             "User:admin",
		},
		Listeners: []metadata.Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr("SASL_PLAINTEXT").String()),
		kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "ro-orders"); err != nil {
		t.Fatal(err)
	}
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:reader").Topics("*").Operations(kadm.OpDescribe, kadm.OpRead))
	if err == nil {
		for _, r := range res {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	consoleURL := "http://" + b.HTTPAddr().String()
	// The other site: a page that posts a form (a "simple" request, no
	// preflight) to the console's topic creation, as soon as it loads.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form method="POST" action="%s/api/v1/topics" enctype="text/plain">`+
			`<input name='{"name":"evil-made","partitions":1,"x":"' value='"}'></form>`+
			`<script>document.forms[0].submit()</script>`, html.EscapeString(consoleURL))
	}))
	defer evil.Close()
	_, port, _ := net.SplitHostPort(evil.Listener.Addr().String())

	artifacts, err := filepath.Abs(filepath.Join("..", "artifacts", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "login.spec.mjs")
	cmd.Env = append(os.Environ(),
		"STROM_URL="+consoleURL,
		"EVIL_URL=http://evil.example:"+port+"/",
		"ARTIFACTS="+artifacts,
		"CHROMIUM="+chromiumPath(),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	t.Logf("login.spec.mjs (%v):\n%s", time.Since(start).Round(100*time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("browser steps failed: %v (screenshots in %s)", err, artifacts)
	}
	if td, err := adm.ListTopics(ctx, "evil-made"); err != nil || td.Has("evil-made") {
		t.Errorf("the cross-site post made a topic (or the check failed: %v)", err)
	}
}
