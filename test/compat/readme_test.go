package compat

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeSnippets returns the README's JavaScript examples, in order, with
// the file name each asks to be saved as.
func readmeSnippets(t *testing.T) (names, codes []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```js\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	name := regexp.MustCompile(`^// ([\w.-]+\.js):`)
	for i, m := range blocks {
		n := "readme-" + string(rune('a'+i)) + ".js"
		if nm := name.FindStringSubmatch(m[1]); nm != nil {
			n = nm[1]
		}
		names, codes = append(names, n), append(codes, m[1])
	}
	return names, codes
}

// TestReadmeNodeExamples (issue 23) runs the README's Node examples as a
// reader would paste them: each saved as its own file and started with
// node, the kafka-node one right after the KafkaJS one. Each must print
// what it produced (and the kafka-node one what the KafkaJS one did, read
// from the beginning), keep running, and stop cleanly on Ctrl-C. Before,
// the KafkaJS one was top-level await with require (a SyntaxError as a
// file) and both used the group "chart", so the second crashed with
// InconsistentGroupProtocol.
func TestReadmeNodeExamples(t *testing.T) {
	skipWithoutGroups(t)
	node := requireTool(t, "node")
	for _, p := range []string{"kafkajs", "kafka-node"} {
		requireFile(t, filepath.Join("node", "node_modules", p, "package.json"), "npm package "+p)
	}
	modules, err := filepath.Abs(filepath.Join("node", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	names, codes := readmeSnippets(t)
	if len(codes) != 2 || !strings.Contains(codes[0], "require('kafkajs')") || !strings.Contains(codes[1], "require('kafka-node')") {
		t.Fatalf("want the README's KafkaJS then kafka-node examples, found %d js blocks: %v", len(codes), names)
	}
	addr := startBroker(t)
	// The demo's topic, which the quick start has created by then.
	createTopic(t, addr, "streaming-data", 3)

	dir := t.TempDir()
	wants := [][]string{
		{`{"sensor":"s3","value":21.7}`},
		{`{"sensor":"s3","value":21.7}`, `{"sensor":"s1","value":19.2}`},
	}
	for i, code := range codes {
		path := filepath.Join(dir, names[i])
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(code, "localhost:9092", addr)), 0o644); err != nil {
			t.Fatal(err)
		}
		runUntilInterrupted(t, node, path, modules, wants[i])
	}
}

// runUntilInterrupted starts node on script, waits until its stdout holds
// every line of want, checks that it is still running, then sends SIGINT
// and expects a clean exit with nothing on stderr.
func runUntilInterrupted(t *testing.T, node, script, modules string, want []string) {
	t.Helper()
	cmd := exec.Command(node, filepath.Base(script))
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var (
		mu     sync.Mutex
		stdout []string
		stderr strings.Builder
	)
	op, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &mu, w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		s := bufio.NewScanner(op)
		for s.Scan() {
			mu.Lock()
			stdout = append(stdout, s.Text())
			mu.Unlock()
		}
		done <- cmd.Wait()
	}()
	defer func() {
		cmd.Process.Kill()
	}()
	report := func() string {
		mu.Lock()
		defer mu.Unlock()
		return "stdout:\n" + strings.Join(stdout, "\n") + "\nstderr:\n" + stderr.String()
	}
	has := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range want {
			found := false
			for _, l := range stdout {
				found = found || strings.TrimSpace(l) == w
			}
			if !found {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !has() {
		select {
		case err := <-done:
			t.Fatalf("%s exited (%v) before printing %q\n%s", filepath.Base(script), err, want, report())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q after 60 s\n%s", filepath.Base(script), want, report())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A consumer keeps running: give a crash (an unhandled error event,
	// a rejected promise) a moment to show.
	select {
	case err := <-done:
		t.Fatalf("%s exited (%v) by itself\n%s", filepath.Base(script), err, report())
	case <-time.After(2 * time.Second):
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: after Ctrl-C: %v\n%s", filepath.Base(script), err, report())
		}
		mu.Lock()
		e := stderr.String()
		mu.Unlock()
		if e != "" {
			t.Fatalf("%s wrote to stderr\n%s", filepath.Base(script), report())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on Ctrl-C\n%s", filepath.Base(script), report())
	}
	t.Logf("%s ran as pasted\n%s", filepath.Base(script), report())
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
