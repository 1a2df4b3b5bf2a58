package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfiles (issue 23): a config file with profiles, like rpk's, and
// kcat's -X client properties. The precedence is flag, -X, STROM_*,
// profile, default.
func TestProfiles(t *testing.T) {
	c := startStrom(t)
	c.ok(t, nil, "topic", "create", "profiled", "-p", "1")
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte("# strom profiles\ncurrent = good\n\n[profile good]\nbrokers = "+c.addr+
		"\nclient-id = from-profile\n\n[profile bad]\nbrokers = 127.0.0.1:1\ntimeout = 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"STROM_CLI_CONFIG=" + conf}
	run := func(env []string, args ...string) result {
		t.Helper()
		return runStrom(t, env, nil, args...)
	}
	okOut := func(r result) string {
		t.Helper()
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		return r.stdout
	}
	const unreachable = "strom: cannot reach broker 127.0.0.1:1: connection refused — is a broker running? (the brokers of profile \"bad\"; set --brokers or STROM_BROKERS, or see \"strom profile list\")\n"

	// The current profile gives the brokers.
	if out := okOut(run(env, "topic", "list")); !strings.Contains(out, "profiled") {
		t.Errorf("topic list with the current profile:\n%s", out)
	}
	// --profile picks another; STROM_PROFILE too.
	if r := run(env, "topic", "list", "--profile", "bad"); r.code != 1 || !strings.HasPrefix(r.stderr, unreachable) {
		t.Errorf("--profile bad: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(append(env, "STROM_PROFILE=bad"), "topic", "list"); r.code != 1 || !strings.HasPrefix(r.stderr, unreachable) {
		t.Errorf("STROM_PROFILE=bad: exit %d, stderr %q", r.code, r.stderr)
	}
	// -X beats the profile; a flag beats -X; STROM_BROKERS beats the profile.
	if out := okOut(run(env, "topic", "list", "--profile", "bad", "-X", "bootstrap.servers="+c.addr)); !strings.Contains(out, "profiled") {
		t.Errorf("-X bootstrap.servers over the profile:\n%s", out)
	}
	if out := okOut(run(env, "topic", "list", "-X", "bootstrap.servers=127.0.0.1:1", "--brokers", c.addr)); !strings.Contains(out, "profiled") {
		t.Errorf("--brokers over -X:\n%s", out)
	}
	if out := okOut(run(append(env, "STROM_BROKERS="+c.addr), "topic", "list", "--profile", "bad")); !strings.Contains(out, "profiled") {
		t.Errorf("STROM_BROKERS over the profile:\n%s", out)
	}
	// Mistakes are said, not ignored.
	if r := run(env, "topic", "list", "-X", "no.such.property=1"); r.code != 1 || !strings.HasPrefix(r.stderr, `strom: -X "no.such.property=1": want key=value, key one of bootstrap.servers,`) {
		t.Errorf("unknown -X: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(env, "topic", "list", "--profile", "nope"); r.code != 1 || r.stderr != `strom: no profile "nope" — profiles in `+conf+": good, bad\n" {
		t.Errorf("unknown profile: exit %d, stderr %q", r.code, r.stderr)
	}
	badConf := filepath.Join(dir, "bad")
	os.WriteFile(badConf, []byte("[profile x]\nbrokerz = a:1\n"), 0o600)
	if r := run([]string{"STROM_CLI_CONFIG=" + badConf}, "topic", "list"); r.code != 1 || !strings.Contains(r.stderr, "line 2: unknown key \"brokerz\"") {
		t.Errorf("bad key: exit %d, stderr %q", r.code, r.stderr)
	}

	// profile list and use.
	same(t, "profile list", okOut(run(env, "profile", "list")), renderTable(row("", "PROFILE", "BROKERS"), row("*", "good", c.addr), row(" ", "bad", "127.0.0.1:1")))
	same(t, "profile use", okOut(run(env, "profile", "use", "bad")), "current profile: bad\n")
	if r := run(env, "topic", "list"); r.code != 1 || !strings.HasPrefix(r.stderr, unreachable) {
		t.Errorf("after profile use bad: exit %d, stderr %q", r.code, r.stderr)
	}
	b, _ := os.ReadFile(conf)
	if !strings.HasPrefix(string(b), "# strom profiles\ncurrent = bad\n\n[profile good]\n") {
		t.Errorf("profile use rewrote more than the current line:\n%s", b)
	}
}

// TestProfileUseKeepsLinkAndLeavesNoTemp: `strom profile use` rewrites the
// file a symbolic link points at (the link stays), keeps its mode, and
// leaves no temporary file; before, it replaced the link by a plain file
// and wrote a fixed path+".tmp" that two commands at once shared.
func TestProfileUseKeepsLinkAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles-config")
	if err := os.WriteFile(real, []byte("current = a\n\n[profile a]\nbrokers = h:1\n\n[profile b]\nbrokers = h:2\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := replaceFile(link, []byte("current = b\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	b, err := os.ReadFile(real)
	if err != nil || string(b) != "current = b\n" {
		t.Fatalf("content %q %v", b, err)
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 2 {
		t.Fatalf("files left: %v", names)
	}
}
