package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	binMu  sync.Mutex
	binDir string
	bins   = map[string]*goBin{}
)

type goBin struct {
	once sync.Once
	path string
	err  error
}

// GoBinary returns the static binary of the Go package pkg of this
// repository (e.g. "./cmd/nullops-agent") built with the build tags, once
// per test process: every test that runs it as a real process shares one
// build. The binaries are in one temporary directory; the TestMain of a
// package that calls GoBinary removes it with RemoveGoBinaries after m.Run.
func GoBinary(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	root := RepoRoot(t)
	name := strings.Join(append([]string{filepath.Base(pkg)}, tags...), "+")
	binMu.Lock()
	b := bins[pkg+" "+name]
	if b == nil {
		b = &goBin{}
		bins[pkg+" "+name] = b
	}
	if binDir == "" {
		binDir, b.err = os.MkdirTemp("", "nullops-test-bin-")
	}
	dir := binDir
	binMu.Unlock()
	b.once.Do(func() {
		if b.err == nil {
			b.path = filepath.Join(dir, name)
			b.err = goBuild(root, pkg, b.path, tags...)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// RemoveGoBinaries removes what GoBinary built in this process.
func RemoveGoBinaries() {
	binMu.Lock()
	defer binMu.Unlock()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	binDir, bins = "", map[string]*goBin{}
}

// BuildStatic compiles the Go package pkg (e.g. "./plugins/http-wait") of this
// repository into a static binary at out.
func BuildStatic(t testing.TB, pkg, out string) {
	t.Helper()
	if err := goBuild(RepoRoot(t), pkg, out); err != nil {
		t.Fatal(err)
	}
}

// goBuild builds pkg as `make build` does: static (CGO_ENABLED=0), with
// -trimpath.
func goBuild(root, pkg, out string, tags ...string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
