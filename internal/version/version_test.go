package version_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

// TestEveryBinaryCarriesTheReleaseVersion builds every command with one
// -X flag (as make build does) and asks each for its version.
func TestEveryBinaryCarriesTheReleaseVersion(t *testing.T) {
	const v = "v9.8.7-test"
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "-ldflags", "-X github.com/nullops/nullops/internal/version.Version="+v, "./cmd/...")
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, b := range []string{"nullops-server", "nullops-agent", "nullops-ingress", "nullops"} {
		out, err := exec.Command(filepath.Join(bin, b), "version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s version: %v\n%s", b, err, out)
		}
		if want := b + " " + v + " "; !strings.HasPrefix(string(out), want) {
			t.Errorf("%s version printed %q, want it to start with %q", b, out, want)
		}
	}
}
