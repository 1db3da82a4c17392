package executor

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// TestLastLinesMaskedBeforeTheyAreCut: a crashed container whose last log
// line is longer than what the crash report reads, with a secret value
// right where a reader that stops at 64 KiB would cut. The "last lines"
// carry "***", never a piece of the value.
func TestLastLinesMaskedBeforeTheyAreCut(t *testing.T) {
	requireDocker(t, "runs its container with the docker CLI")
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 2*time.Minute)
	const secret = "LAST-lines-secret-value-31"
	prefix := "token="
	name := fmt.Sprintf("nullops-test-lastlines-%s", e.node)
	testutil.Docker(t, "run", "-d", "--name", name,
		"-e", "LOG_ON_START="+prefix+secret+" end-of-line",
		"-e", "LOG_PAD="+strconv.Itoa(64<<10-len(prefix)-10),
		"-e", "EXIT_AFTER_LOG=1", demoWebImage)
	t.Cleanup(func() { _, _ = testutil.DockerErr("rm", "-f", name) })
	if code := testutil.Docker(t, "wait", name); code != "3" { // blocks until it exited
		t.Fatalf("container exited with %s, want 3", code)
	}
	red := newRedactor(map[string]string{"tok": secret})
	got := e.ex.lastLines(ctx, name, red)
	if !strings.Contains(got, prefix+"*** end-of-line") {
		t.Errorf("masked line missing from the last lines: …%q", tailString(got, 100))
	}
	for _, p := range []string{secret[:8], secret[8:], "LAST-line", "value-31"} {
		if strings.Contains(got, p) {
			t.Errorf("%q of the secret is in the last lines: …%q", p, tailString(got, 100))
		}
	}
}
