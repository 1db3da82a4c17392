package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/plugins/sdk"
)

// TestPluginAgainstRealPostgres runs the built plugin binary with a
// contract input against the real PostgreSQL of scripts/setup.sh: it
// creates the role and database, runs the script, and the output URL
// connects as the new role and sees the script's data. A second run is
// harmless.
func TestPluginAgainstRealPostgres(t *testing.T) {
	admin := os.Getenv("NULLOPS_TEST_DATABASE_URL")
	if admin == "" {
		t.Fatal(`NULLOPS_TEST_DATABASE_URL is not set: run eval "$(bash scripts/setup.sh)" first`)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "postgres-plugin")
	testutil.BuildStatic(t, "./plugins/postgres", bin)
	ctx := testutil.Context(t, 2*time.Minute)
	name := fmt.Sprintf("plug_%d", time.Now().UnixNano()%1e9)
	pass, _ := u.User.Password()
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+name)
	})
	in := sdk.Input{
		Deployment: sdk.Deployment{ID: 1, Name: "pr-1"},
		Step:       "mkdb", Attempt: 1,
		Params: map[string]any{
			"host": u.Hostname(), "port": u.Port(), "admin_user": u.User.Username(), "admin_password": pass,
			"database": name, "password": "app-pass-1",
			"sql": "CREATE TABLE IF NOT EXISTS greetings (msg text); INSERT INTO greetings VALUES ('hello from the plugin');",
		},
	}
	runPlugin := func() sdk.Output {
		b, _ := json.Marshal(in)
		cmd := exec.CommandContext(ctx, bin)
		cmd.Stdin = bytes.NewReader(b)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("plugin failed: %v\nstderr:\n%s", err, stderr.String())
		}
		var out sdk.Output
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("plugin stdout is not JSON: %v: %q", err, stdout.String())
		}
		return out
	}
	out := runPlugin()
	if out.Outputs["user"] != name || out.Outputs["database"] != name || out.Outputs["password"] != "app-pass-1" {
		t.Fatalf("outputs %v", out.Outputs)
	}
	out = runPlugin() // idempotent
	conn, err := pgx.Connect(ctx, out.Outputs["url"])
	if err != nil {
		t.Fatalf("connect with output url: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	var owner, who string
	if err := conn.QueryRow(ctx, "SELECT count(*), current_user, (SELECT tableowner FROM pg_tables WHERE tablename='greetings') FROM greetings").Scan(&n, &who, &owner); err != nil {
		t.Fatal(err)
	}
	if n != 2 || who != name || owner != name {
		t.Fatalf("rows=%d user=%s owner=%s; want 2 rows owned by %s", n, who, owner, name)
	}

	// A broken script fails with PostgreSQL's message on stderr.
	in.Params["sql"] = "SELECT * FROM no_such_table;"
	b, _ := json.Marshal(in)
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "no_such_table") {
		t.Fatalf("broken script: err=%v stderr=%s", err, stderr.String())
	}
}
