package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	imageMu    sync.Mutex
	imageBuilt = map[string]bool{}
)

// Docker runs the docker CLI and returns its trimmed stdout, failing the test
// with stderr on error.
func Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := DockerErr(args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// DockerErr runs the docker CLI and returns stdout or an error carrying stderr.
func DockerErr(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// ScratchImage builds a `FROM scratch` image tagged ref whose entrypoint is
// the static binary of the Go package pkg, once per test process (again if
// a test removed it).
// Extra args are appended to the entrypoint. The image needs nothing pulled.
func ScratchImage(t testing.TB, pkg, ref string, args ...string) string {
	t.Helper()
	imageMu.Lock()
	defer imageMu.Unlock()
	// Built earlier in this process and still there (a test may remove its
	// image in its cleanup; -count=N runs it again).
	if imageBuilt[ref] {
		if _, err := DockerErr("image", "inspect", ref); err == nil {
			return ref
		}
	}
	dir := t.TempDir()
	BuildStatic(t, pkg, filepath.Join(dir, "app"))
	entry := []string{`"/app"`}
	for _, a := range args {
		entry = append(entry, fmt.Sprintf("%q", a))
	}
	dockerfile := "FROM scratch\nCOPY app /app\nENTRYPOINT [" + strings.Join(entry, ", ") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	Docker(t, "build", "-q", "-t", ref, dir)
	imageBuilt[ref] = true
	return ref
}

// RemoveLabelled removes the containers (with their anonymous volumes),
// networks and volumes carrying label ("nullops.node=n1"): what a test's
// agent left, at the end of the test. Errors are ignored.
func RemoveLabelled(label string) {
	f := "label=" + label
	if ids, _ := DockerErr("ps", "-aq", "--filter", f); ids != "" {
		_, _ = DockerErr(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	if ids, _ := DockerErr("network", "ls", "-q", "--filter", f); ids != "" {
		_, _ = DockerErr(append([]string{"network", "rm"}, strings.Fields(ids)...)...)
	}
	if ids, _ := DockerErr("volume", "ls", "-q", "--filter", f); ids != "" {
		_, _ = DockerErr(append([]string{"volume", "rm", "-f"}, strings.Fields(ids)...)...)
	}
}
