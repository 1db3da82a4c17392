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
	"time"
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
// agent left, at the end of the test. A busy daemon can fail a removal (or
// a container can still be leaving a network), so it looks again until
// nothing with the label is left, for up to a minute, and returns what
// stayed.
func RemoveLabelled(label string) error {
	f := "label=" + label
	kinds := []struct{ list, remove []string }{
		{[]string{"ps", "-aq", "--filter", f}, []string{"rm", "-f", "-v"}},
		{[]string{"network", "ls", "-q", "--filter", f}, []string{"network", "rm"}},
		{[]string{"volume", "ls", "-q", "--filter", f}, []string{"volume", "rm", "-f"}},
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var left []string
		for _, k := range kinds {
			ids, err := DockerErr(k.list...)
			if err != nil {
				left = append(left, fmt.Sprintf("%s: %v", strings.Join(k.list[:len(k.list)-2], " "), err))
				continue
			}
			if ids == "" {
				continue
			}
			if _, err := DockerErr(append(k.remove, strings.Fields(ids)...)...); err != nil {
				left = append(left, fmt.Sprintf("%s %s: %v", strings.Join(k.remove, " "), ids, err))
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("objects labelled %s stayed: %s", label, strings.Join(left, "; "))
		}
		time.Sleep(time.Second)
	}
}
