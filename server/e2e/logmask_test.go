package e2e

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServiceLogsAreMaskedThroughTheAPI: a service prints a secret value of
// its deployment in a line Docker cuts into two log messages inside the
// value. What a user reads through GET /deployments/{id}/logs — tail and
// follow — from the real agent shows "***", never the value or a piece.
func TestServiceLogsAreMaskedThroughTheAPI(t *testing.T) {
	t.Parallel()
	w := setup(t)
	const secret = "E2E-secret-split-value-99"
	pieces := []string{secret, secret[:12], secret[12:], "value-99", "E2E-secre"}
	w.admin.post("/secrets", map[string]any{"name": "e2e_token", "value": secret}).want(t, 201)
	prefix := "token="
	graph := map[string]any{
		"nodes": []map[string]any{{"id": "web", "kind": "service", "service": "e2e-web", "port": 8080,
			"env": map[string]any{
				"LOG_ON_START": prefix + "${secrets.e2e_token} end-of-line",
				// Docker cuts log lines at 16 KiB: the value starts 10 bytes before.
				"LOG_PAD": strconv.Itoa(16<<10 - len(prefix) - 10),
			}}},
		"edges": [][2]string{},
	}
	project := w.newProject(t, "masked", 0.25, "", graph)
	d := create(t, w.dev, project, w.envID, "pr-mask", "v1.0.0")
	d = waitStatus(t, w.dev, d.ID, "running", 180*time.Second)

	check := func(what, logs string) {
		t.Helper()
		if !strings.Contains(logs, prefix+"*** end-of-line") {
			t.Errorf("%s: masked line not found in %d bytes: …%q", what, len(logs), tail([]byte(logs), 200))
		}
		for _, p := range pieces {
			if strings.Contains(logs, p) {
				t.Errorf("%s: %q of the secret is visible", what, p)
			}
		}
	}
	// Docker writes the container's output to its log asynchronously: the
	// line may reach the log after the deployment reads running, so the
	// tail is read until the line's end is there.
	var r response
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		r = w.dev.get(fmt.Sprintf("/deployments/%d/logs?service=web&tail=0", d.ID)).want(t, 200)
		if strings.Contains(string(r.Body), "end-of-line") || time.Now().After(deadline) {
			break
		}
	}
	check("tail", string(r.Body))
	// With timestamps every line starts with its time, and Docker's time
	// at the start of the line's second half does not split the secret.
	r = w.dev.get(fmt.Sprintf("/deployments/%d/logs?service=web&tail=0&timestamps=true", d.ID)).want(t, 200)
	check("tail with timestamps", string(r.Body))
	for _, line := range strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n") {
		stamp, _, _ := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
			t.Errorf("line without its time: %q", tail([]byte(line), 120))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp := w.dev.stream(ctx, fmt.Sprintf("/deployments/%d/logs?service=web&tail=0&follow=true", d.ID), "")
	defer resp.Body.Close()
	var got strings.Builder
	buf := make([]byte, 32<<10)
	for !strings.Contains(got.String(), "end-of-line") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if err != io.EOF {
				t.Logf("follow: %v", err)
			}
			break
		}
	}
	check("follow", got.String())
}

// TestStepOutputsShowSecretsAsPlaceholders: a plugin step that hands a
// secret value on in its outputs (here: a DSN built from it) is shown by
// GET /deployments/{id} — what the UI shows — with ${secrets.NAME} in the
// value's place, never the value (docs/security.md: readers see outputs).
func TestStepOutputsShowSecretsAsPlaceholders(t *testing.T) {
	t.Parallel()
	w := setup(t)
	const secret = "E2E-output-secret-42"
	w.admin.post("/secrets", map[string]any{"name": "e2e_dsn_pw", "value": secret}).want(t, 201)
	graph := map[string]any{
		"nodes": []map[string]any{
			{"id": "setup", "kind": "component", "plugin": "e2e-setup",
				"params": map[string]any{"mode": "ok", "outputs": map[string]any{"dsn": "app:${secrets.e2e_dsn_pw}@db/app", "plain": "hi"}}},
			{"id": "web", "kind": "service", "service": "e2e-web", "port": 8080, "ingress": true,
				"env": map[string]any{"MESSAGE": "${steps.setup.outputs.plain}", "SERVICE_NAME": "web"}},
		},
		"edges": [][2]string{{"setup", "web"}},
	}
	project := w.newProject(t, "outputs", 0.25, "", graph)
	d := create(t, w.dev, project, w.envID, "pr-outputs", "v1.0.0")
	waitStatus(t, w.dev, d.ID, "running", 120*time.Second)
	r := w.dev.get(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 200)
	if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), secret[:10]) {
		t.Fatalf("the deployment shows the secret value: %s", r.Body)
	}
	var got struct {
		Steps []struct {
			ID      string            `json:"id"`
			Outputs map[string]string `json:"outputs"`
		} `json:"steps"`
	}
	r.decode(t, &got)
	for _, st := range got.Steps {
		if st.ID == "setup" {
			if st.Outputs["dsn"] != "app:${secrets.e2e_dsn_pw}@db/app" || st.Outputs["plain"] != "hi" {
				t.Errorf("setup outputs %v", st.Outputs)
			}
			return
		}
	}
	t.Errorf("no step setup in %s", r.Body)
}
