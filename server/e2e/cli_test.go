package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/cli"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
)

// cliRun runs the nullops command line in-process, as a CI job would run
// the binary, and returns its stdout and error.
func cliRun(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.Run(ctx, args, &out, &errOut)
	if err != nil {
		t.Logf("nullops %s: %v (stderr: %s)", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), err
}

func exitCode(err error) int {
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

// TestCLIJourney drives a developer's CI job through the CLI against the
// real server, agent, registry and Docker: login with an API token, create
// and wait, list, logs (and -f), clone with another tag, extend, refusals
// that change nothing, delete — and the containers are gone afterwards.
//
// Not parallel: the CLI reads its profile, server and token from the
// process's environment, which the test sets (t.Setenv).
func TestCLIJourney(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	profile := filepath.Join(t.TempDir(), "nullops", "config.json")
	t.Setenv("NULLOPS_CONFIG", profile)
	t.Setenv("NULLOPS_SERVER", "")
	t.Setenv("NULLOPS_TOKEN", "")

	var tok struct {
		Token string `json:"token"`
	}
	w.dev.post("/tokens", map[string]any{"name": "ci"}).want(t, 201).decode(t, &tok)

	// Not logged in yet: a clear message, nothing else.
	if _, err := cliRun(t, ctx, "deployments", "list"); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Fatalf("list before login: %v", err)
	}
	// A wrong token is refused at login and no profile is written.
	if _, err := cliRun(t, ctx, "login", "--server", w.srv.URL, "--token", "nullops_wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("login with a wrong token: %v", err)
	}
	if _, err := os.Stat(profile); !os.IsNotExist(err) {
		t.Fatalf("profile written after a failed login: %v", err)
	}
	out, err := cliRun(t, ctx, "login", "--server", w.srv.URL, "--token", tok.Token)
	if err != nil || !strings.Contains(out, "as dev") {
		t.Fatalf("login: %q %v", out, err)
	}
	if st, err := os.Stat(profile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("profile %s: %v %v (want mode 0600)", profile, st, err)
	}

	// create --wait by names, JSON output.
	out, err = cliRun(t, ctx, "deployments", "create", "--project", "shop", "--environment", "qa", "--name", "cli-1",
		"--tag", "e2e-web=v1.0.0", "--wait", "--timeout", "2m", "-o", "json")
	if err != nil {
		t.Fatalf("create --wait: %v\n%s", err, out)
	}
	var created restapi.Deployment
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create -o json printed %q: %v", out, err)
	}
	if created.Status != "running" || created.Tags["e2e-web"] != "v1.0.0" || created.URLs["web"] != "http://web.cli-1.qa.e2e.test" {
		t.Fatalf("created %+v", created)
	}

	// A tag that does not exist: the API's message, exit 1, nothing created.
	_, err = cliRun(t, ctx, "deployments", "create", "--project", "shop", "--environment", "qa", "--name", "cli-bad", "--tag", "e2e-web=v9.9.9")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "v9.9.9") {
		t.Fatalf("create with a missing tag: %v", err)
	}
	// Bad usage: exit 2.
	if _, err = cliRun(t, ctx, "deployments", "create", "--project", "shop"); exitCode(err) != 2 {
		t.Fatalf("create without name: exit %d (%v)", exitCode(err), err)
	}

	out, err = cliRun(t, ctx, "deployments", "list", "--environment", "qa")
	if err != nil || !strings.Contains(out, "cli-1") || !strings.Contains(out, "running") || strings.Contains(out, "cli-bad") {
		t.Fatalf("list:\n%s %v", out, err)
	}

	// Logs: the service's own log line.
	out, err = cliRun(t, ctx, "logs", "--service", "web", "--environment", "qa", "cli-1")
	if err != nil || !strings.Contains(out, "listening") {
		t.Fatalf("logs:\n%s %v", out, err)
	}
	// logs -f keeps streaming until interrupted.
	fctx, cancel := context.WithCancel(ctx)
	var follow testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(fctx, []string{"logs", "-f", "--service", "web", "--environment", "qa", "cli-1"}, &follow, &bytes.Buffer{})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(follow.String(), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f printed %q", follow.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("logs -f ended on its own: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not stop when interrupted")
	}

	// clone with another tag, then wait for it by name.
	out, err = cliRun(t, ctx, "deployments", "clone", "cli-1", "--environment", "qa", "--name", "cli-2", "--tag", "e2e-web=v1.1.0")
	if err != nil || !strings.Contains(out, "cli-2") {
		t.Fatalf("clone: %q %v", out, err)
	}
	out, err = cliRun(t, ctx, "wait", "cli-2", "--environment", "qa", "--timeout", "2m", "-o", "json")
	var clone restapi.Deployment
	if err != nil || json.Unmarshal([]byte(out), &clone) != nil || clone.Status != "running" || clone.Tags["e2e-web"] != "v1.1.0" || clone.ClonedFrom == nil || *clone.ClonedFrom != created.ID {
		t.Fatalf("wait for clone: %q %v", out, err)
	}

	// extend pushes the expiry forward.
	before := getDeployment(t, w.dev, created.ID).ExpiresAt
	time.Sleep(1100 * time.Millisecond)
	if _, err := cliRun(t, ctx, "deployments", "extend", "cli-1", "--environment", "qa"); err != nil {
		t.Fatal(err)
	}
	if after := getDeployment(t, w.dev, created.ID).ExpiresAt; !after.After(before) {
		t.Fatalf("extend: expiry %s → %s", before, after)
	}

	// A read-only user's token cannot delete: refused, nothing changes.
	var readerTok struct {
		Token string `json:"token"`
	}
	w.reader.post("/tokens", map[string]any{"name": "ci"}).want(t, 201).decode(t, &readerTok)
	t.Setenv("NULLOPS_TOKEN", readerTok.Token)
	t.Setenv("NULLOPS_SERVER", w.srv.URL)
	if _, err := cliRun(t, ctx, "deployments", "delete", "cli-1", "--environment", "qa"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("delete as reader: %v", err)
	}
	if d := getDeployment(t, w.dev, created.ID); d.Status != "running" {
		t.Fatalf("after the refused delete the deployment is %s", d.Status)
	}
	t.Setenv("NULLOPS_TOKEN", "")
	t.Setenv("NULLOPS_SERVER", "")

	// delete --wait frees the name at once: a CI job re-creates the same
	// pull request's deployment right after.
	if _, err := cliRun(t, ctx, "deployments", "delete", "cli-1", "--environment", "qa", "--wait", "--timeout", "2m"); err != nil {
		t.Fatal(err)
	}
	waitNoObjects(t, w.node.node, created.ID)
	out, err = cliRun(t, ctx, "deployments", "create", "--project", "shop", "--environment", "qa", "--name", "cli-1", "--tag", "e2e-web=v1.1.0", "-o", "json")
	var again restapi.Deployment
	if err != nil || json.Unmarshal([]byte(out), &again) != nil || again.ID == created.ID {
		t.Fatalf("re-create cli-1 after delete --wait: %q %v", out, err)
	}

	// delete the rest: the containers are gone.
	for _, d := range []restapi.Deployment{again, clone} {
		if _, err := cliRun(t, ctx, "deployments", "delete", d.Name, "--environment", "qa", "--wait"); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []restapi.Deployment{again, clone} {
		waitNoObjects(t, w.node.node, d.ID)
	}
}
