package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/store/storetest"
)

func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nullops-server")
	testutil.BuildStatic(t, "./cmd/nullops-server", bin)
	return bin
}

func TestHelpListsEveryOption(t *testing.T) {
	bin := buildServer(t)
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, opt := range []string{"--listen", "--database.url", "--secret.key", "--log.format", "--agents.pinginterval", "--ingress.token"} {
		if !bytes.Contains(out, []byte(opt)) {
			t.Errorf("--help does not list %s", opt)
		}
	}
}

func TestBadConfigurationStopsWithTheKey(t *testing.T) {
	bin := buildServer(t)
	cases := map[string][]string{
		"secret.key":  {"--listen=127.0.0.1:0"},
		"log.format":  {"--secret.key=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "--log.format=xml"},
		"nosuchthing": {"--nosuchthing=1"},
	}
	for key, args := range cases {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%s: exited 0", key)
		}
		if !strings.Contains(string(out), key) {
			t.Errorf("%s: message %q does not name the key", key, out)
		}
	}
}

// TestServesAndShutsDownGracefully runs the real binary on a fresh database:
// migrations apply, /readyz turns ready, and SIGTERM ends it with exit 0.
func TestServesAndShutsDownGracefully(t *testing.T) {
	bin := buildServer(t)
	dbURL := storetest.NewDatabase(t, "")
	port := testutil.FreePort(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"NULLOPS_LISTEN=127.0.0.1:" + fmt.Sprint(port),
		"NULLOPS_DATABASE_URL=" + dbURL,
		"NULLOPS_SECRET_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx := testutil.Context(t, 60*time.Second)
	testutil.WaitFor(t, ctx, 100*time.Millisecond, "/readyz answers 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
		if path == "/metrics" && !bytes.Contains(body, []byte("nullops_http_request_duration_seconds")) {
			t.Errorf("/metrics lacks request metrics")
		}
	}
	resp, err := http.Get(base + "/api/v1/nosuchroute")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !bytes.Contains(body, []byte(`"error":{"code":"not_found"`)) {
		t.Errorf("unknown route: %d %s", resp.StatusCode, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"message":"http request"`) {
		t.Errorf("no structured request log in output:\n%s", logs.String())
	}
}
