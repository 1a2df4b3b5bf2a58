package console

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBundleFresh type-checks web/ and rebuilds the front end from it with
// the locked esbuild, and checks that the committed bundle in dist/ is byte for byte what the
// sources give. `make web` fixes a failure. It needs Node and web's
// node_modules (`make deps`); without them it is skipped on a developer's
// machine and fails in CI.
func TestBundleFresh(t *testing.T) {
	web := filepath.Join("..", "..", "web")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(web, "node_modules", "esbuild", "package.json"))
	}
	if err != nil {
		if v := os.Getenv("CI"); v != "" && v != "false" && v != "0" {
			t.Fatalf("cannot rebuild the bundle: %v; CI must have Node and web/node_modules (`make deps`)", err)
		}
		t.Skipf("cannot rebuild the bundle: %v; run `make deps`", err)
	}
	// The sources must type-check; esbuild alone would not notice.
	tsc := exec.Command(node, filepath.Join("node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", ".")
	tsc.Dir = web
	if b, err := tsc.CombinedOutput(); err != nil {
		t.Errorf("tsc: %v\n%s", err, b)
	}
	out := t.TempDir()
	cmd := exec.Command(node, "build.mjs", "--out", out)
	cmd.Dir = web
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, b)
	}
	read := func(root string) map[string][]byte {
		files := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			files[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	built, committed := read(out), read("dist")
	for name, b := range built {
		c, ok := committed[name]
		switch {
		case !ok:
			t.Errorf("dist/%s is missing: run `make web` and commit internal/console/dist", name)
		case !bytes.Equal(b, c):
			t.Errorf("dist/%s does not match web/ (%d bytes built, %d committed): run `make web` and commit internal/console/dist", name, len(b), len(c))
		}
	}
	for name := range committed {
		if _, ok := built[name]; !ok {
			t.Errorf("dist/%s is not built from web/ any more: run `make web`", name)
		}
	}
	var total int
	for _, b := range committed {
		total += len(b)
	}
	if total > 300<<10 {
		t.Errorf("the bundle is %d KiB; keep it under 300 KiB", total>>10)
	}
}
