package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os/exec"
	"strings"
	"testing"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestAdminCreate runs `nullops-server admin create` against a fresh
// database: the admin exists with the password read from stdin, a second run
// with the same name is refused, and a missing username is named.
func TestAdminCreate(t *testing.T) {
	bin := buildServer(t)
	dbURL := storetest.NewDatabase(t, "")
	env := []string{
		"PATH=/usr/bin:/bin",
		"NULLOPS_DATABASE_URL=" + dbURL,
		"NULLOPS_SECRET_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
	}
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"admin", "create"}, args...)...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("stdin-password-123\n", "--admin.username=Ops")
	if err != nil || !strings.Contains(out, "created administrator ops") {
		t.Fatalf("admin create: %v\n%s", err, out)
	}
	if strings.Contains(out, "stdin-password-123") {
		t.Fatalf("the password was echoed:\n%s", out)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, hash, err := st.UserCredentials(ctx, "ops")
	if err != nil || !u.IsAdmin() || !u.Active {
		t.Fatalf("created user %+v %v", u, err)
	}
	if ok, _, err := auth.VerifyPassword(hash, "stdin-password-123", auth.DefaultParams); !ok || err != nil {
		t.Fatalf("password from stdin does not verify: %v %v", ok, err)
	}
	out, err = run("", "--admin.username=ops", "--admin.password=another-password-1")
	if err == nil || !strings.Contains(out, "taken") {
		t.Fatalf("second create of ops: %v\n%s", err, out)
	}
	out, err = run("pw-from-stdin-1\n")
	if err == nil || !strings.Contains(out, "admin.username") {
		t.Fatalf("without a username: %v\n%s", err, out)
	}
	out, err = run("short\n", "--admin.username=tiny")
	if err == nil || !strings.Contains(out, "password") {
		t.Fatalf("short password: %v\n%s", err, out)
	}
	entries, _, err := st.ListAudit(ctx, store.AuditFilter{Action: "user.create"})
	if err != nil || len(entries) != 1 || entries[0].ActorName != "cli" {
		t.Fatalf("audit of admin create: %+v %v", entries, err)
	}
}
