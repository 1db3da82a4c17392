package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// cheap parameters keep these tests fast; the defaults are tested in password_test.go.
var cheap = auth.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newService(t *testing.T, st *store.Store) *auth.Service {
	t.Helper()
	s, err := auth.New(st, zerolog.Nop(), auth.Options{Params: cheap, IdleTimeout: time.Hour, AbsoluteTimeout: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBootstrapCreatesOneAdminOnlyWhenNoUserExists(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	// Two servers starting at once: exactly one admin.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, name := range []string{"root", "boss"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- newService(t, st).Bootstrap(ctx, config.Admin{Username: name, Password: "first-admin-password"})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	users, total, err := st.ListUsers(ctx, store.UserFilter{})
	if err != nil || total != 1 || !users[0].IsAdmin() {
		t.Fatalf("users after bootstrap: %+v %d %v", users, total, err)
	}
	svc := newService(t, st)
	if _, err := svc.Login(ctx, auth.LoginRequest{Username: users[0].Username, Password: "first-admin-password", ClientAddr: "x"}); err != nil {
		t.Fatalf("first admin cannot log in: %v", err)
	}
	// Later starts change nothing, even with other credentials configured.
	if err := svc.Bootstrap(ctx, config.Admin{Username: "other", Password: "other-admin-password"}); err != nil {
		t.Fatal(err)
	}
	if _, total, _ := st.ListUsers(ctx, store.UserFilter{}); total != 1 {
		t.Fatalf("bootstrap created a second user")
	}
	entries, _, _ := st.ListAudit(ctx, store.AuditFilter{Action: "user.create"})
	if len(entries) != 1 || entries[0].ActorName != "system" {
		t.Fatalf("bootstrap audit: %+v", entries)
	}
	// A bad configured password is refused, naming it.
	st2 := storetest.New(t)
	err = newService(t, st2).Bootstrap(ctx, config.Admin{Username: "x", Password: "short"})
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("short bootstrap password: %v", err)
	}
}

func TestLoginRehashesPasswordsMadeWithOldParameters(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	old := auth.Params{Memory: 512, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, _ := auth.HashPassword("an old password!", old)
	u, err := store.CreateUser(ctx, st.Pool, store.NewUser{Username: "olga", PasswordHash: h, Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(t, st)
	if _, err := svc.Login(ctx, auth.LoginRequest{Username: "olga", Password: "an old password!"}); err != nil {
		t.Fatal(err)
	}
	nh, _ := st.UserPasswordHash(ctx, u.ID)
	p, _, _, err := auth.DecodeHash(nh)
	if err != nil || p != cheap {
		t.Fatalf("after login the hash has %+v, want the current %+v", p, cheap)
	}
}

func TestTokensAndSessionsAreRefusedWhenInvalid(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	svc := newService(t, st)
	u, err := svc.CreateUser(ctx, store.SystemActor, auth.NewUser{Username: "pia", Password: "pia-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"", "x", "nlo_" + "a"} {
		if _, err := svc.Session(ctx, c); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("session %q: %v", c, err)
		}
		if _, err := svc.Token(ctx, c); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("token %q: %v", c, err)
		}
	}
	tok, at, err := svc.CreateToken(ctx, store.SystemActor, auth.NewToken{UserID: u.ID, Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Token(ctx, tok)
	if err != nil || p.UserID != u.ID || p.Via != auth.ViaToken || p.TokenID != at.ID || p.Admin {
		t.Fatalf("token principal %+v %v", p, err)
	}
	// Only the SHA-256 is stored.
	var n int
	if err := st.Pool.QueryRow(ctx, "SELECT count(*) FROM api_tokens WHERE token_hash = sha256($1::bytea)", []byte(tok)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("token row by sha256: %d %v", n, err)
	}
	// Pruning removes expired sessions only.
	res, err := svc.Login(ctx, auth.LoginRequest{Username: "pia", Password: "pia-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	if del, _ := st.DeleteExpiredSessions(ctx, time.Now(), time.Now().Add(-time.Hour)); del != 0 {
		t.Fatalf("pruned %d live sessions", del)
	}
	if del, _ := st.DeleteExpiredSessions(ctx, time.Now().Add(25*time.Hour), time.Now().Add(-time.Hour)); del != 1 {
		t.Fatalf("pruned %d expired sessions, want 1", del)
	}
	if _, err := svc.Session(ctx, res.SessionID); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("pruned session still valid: %v", err)
	}
}
