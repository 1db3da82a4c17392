package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api"
	"github.com/nullops/nullops/server/api/apitest"
)

func TestLoginSetsAHardenedCookieAndMeShowsTheUser(t *testing.T) {
	env := apitest.New(t)
	env.User("alice", false)
	c := env.Anonymous()
	r := c.Post("/api/v1/auth/login", map[string]string{"username": "Alice ", "password": apitest.DefaultPassword}).Want(t, 200)
	var me restapi.Me
	r.Decode(t, &me)
	if me.User.Username != "alice" || me.CSRFToken == "" || me.Via != "session" || me.ExpiresAt == nil {
		t.Fatalf("login response: %s", r.Body)
	}
	var ck *http.Cookie
	for _, x := range (&http.Response{Header: r.Header}).Cookies() {
		if x.Name == api.SessionCookie {
			ck = x
		}
	}
	if ck == nil {
		t.Fatalf("no %s cookie in %v", api.SessionCookie, r.Header)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || len(ck.Value) != 43 {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Path=/, 256-bit value", ck)
	}
	if ck.Secure {
		t.Errorf("cookie is Secure on plain HTTP")
	}
	// The session id is stored only as its SHA-256.
	var n int
	if err := env.Store.Pool.QueryRow(context.Background(), "SELECT count(*) FROM sessions WHERE id_hash = sha256($1::bytea)", []byte(ck.Value)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("session row by sha256(cookie): %d, %v", n, err)
	}
	var m2 restapi.Me
	c.Get("/api/v1/me").Want(t, 200).Decode(t, &m2)
	if m2.User.ID != me.User.ID || m2.CSRFToken != me.CSRFToken {
		t.Fatalf("GET /me: %+v", m2)
	}
}

func TestLoginRejectsBadCredentialsAlikeAndAudits(t *testing.T) {
	env := apitest.New(t)
	env.User("bob", false)
	c := env.Anonymous()
	wrong := c.Post("/api/v1/auth/login", map[string]string{"username": "bob", "password": "wrong-password-1"})
	unknown := c.Post("/api/v1/auth/login", map[string]string{"username": "nobody", "password": "wrong-password-1"})
	if wrong.Status != 401 || unknown.Status != 401 || string(wrong.Body) != string(unknown.Body) {
		t.Fatalf("wrong password %d %s vs unknown user %d %s: must look the same", wrong.Status, wrong.Body, unknown.Status, unknown.Body)
	}
	if c.Get("/api/v1/me").Status != 401 {
		t.Fatal("failed login left the client authenticated")
	}
	missing := c.Post("/api/v1/auth/login", map[string]string{"username": "bob"}).Want(t, 400)
	if !strings.Contains(string(missing.Body), `"password":"required"`) {
		t.Errorf("missing password: %s", missing.Body)
	}
	// Not JSON: refused before anything else (login CSRF via a form post).
	req := c.Do(http.MethodPost, "/api/v1/auth/login", nil)
	if req.Status != http.StatusUnsupportedMediaType {
		t.Errorf("login without JSON content type: %d %s", req.Status, req.Body)
	}
	var list restapi.List[restapi.AuditEntry]
	env.Admin.Get("/api/v1/audit?action=auth.login_failed").Want(t, 200).Decode(t, &list)
	if list.Total != 2 {
		t.Fatalf("login failures audited: %d, want 2: %+v", list.Total, list.Items)
	}
	for _, e := range list.Items {
		if e.ClientAddr != "127.0.0.1" || e.ActorID != nil {
			t.Errorf("audit entry %+v", e)
		}
	}
	env.Admin.Get("/api/v1/audit?action=auth.login&actor=admin").Want(t, 200).Decode(t, &list)
	if list.Total != 1 {
		t.Errorf("successful admin login audited %d times", list.Total)
	}
}

func TestLoginThrottlingPerUsernameAndPerAddress(t *testing.T) {
	env := apitest.New(t)
	env.User("carol", false)
	c := env.Anonymous()
	for i := range 5 {
		c.Post("/api/v1/auth/login", map[string]string{"username": "carol", "password": "bad-password-" + strconv.Itoa(i)}).Want(t, 401)
	}
	// Delayed now from this address, even with the right password.
	r := c.Post("/api/v1/auth/login", map[string]string{"username": "carol", "password": apitest.DefaultPassword}).Want(t, 429)
	if r.ErrorCode() != "too_many_attempts" || !strings.Contains(string(r.Body), "too many failed attempts for this username") {
		t.Errorf("429 body: %s", r.Body)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 55 || ra > 60 {
		t.Errorf("Retry-After %q, want about one minute", r.Header.Get("Retry-After"))
	}
	// Other users are not affected by carol's delay.
	env.User("dave", false)
	env.Login("dave", apitest.DefaultPassword)
	// After the delay the right password works again.
	env.Clock.Advance(time.Minute + time.Second)
	env.Login("carol", apitest.DefaultPassword)

	// Per client address: 20 failures over any usernames (carol's 5
	// included) delay the address.
	for i := range 15 {
		c.Post("/api/v1/auth/login", map[string]string{"username": "ghost" + strconv.Itoa(i), "password": "bad-password-x"}).Want(t, 401)
	}
	r = c.Post("/api/v1/auth/login", map[string]string{"username": "dave", "password": apitest.DefaultPassword}).Want(t, 429)
	if !strings.Contains(string(r.Body), "client address") {
		t.Errorf("address lock message: %s", r.Body)
	}
	var list restapi.List[restapi.AuditEntry]
	env.Admin.Get("/api/v1/audit?action=auth.login_failed&actor=carol").Want(t, 200).Decode(t, &list)
	if list.Total != 6 {
		t.Errorf("carol's failures audited: %d, want 6 (5 wrong + 1 throttled)", list.Total)
	}
}

func TestLogoutEndsTheSession(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("erin", false)
	c.Get("/api/v1/me").Want(t, 200)
	// Logout is state-changing: the CSRF token is required.
	csrf := c.CSRF
	c.CSRF = ""
	if r := c.Post("/api/v1/auth/logout", nil); r.Status != 403 || r.ErrorCode() != "csrf" {
		t.Fatalf("logout without CSRF token: %d %s", r.Status, r.Body)
	}
	c.CSRF = csrf
	c.Post("/api/v1/auth/logout", nil).Want(t, 204)
	c.Get("/api/v1/me").Want(t, 401)
	var n int
	_ = env.Store.Pool.QueryRow(context.Background(), "SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'erin'").Scan(&n)
	if n != 0 {
		t.Errorf("%d sessions left after logout", n)
	}
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	env := apitest.New(t)
	env.User("frank", false)

	// Idle: 12h default. Use keeps it alive; 12h without use ends it.
	c := env.Login("frank", apitest.DefaultPassword)
	for range 3 {
		env.Clock.Advance(11 * time.Hour)
		c.Get("/api/v1/me").Want(t, 200)
	}
	env.Clock.Advance(12 * time.Hour)
	c.Get("/api/v1/me").Want(t, 401)

	// Absolute: 7 days after login, even when used all along.
	c = env.Login("frank", apitest.DefaultPassword)
	for range 15 {
		env.Clock.Advance(11 * time.Hour)
		c.Get("/api/v1/me").Want(t, 200)
	}
	env.Clock.Advance(11 * time.Hour) // 176h > 168h
	c.Get("/api/v1/me").Want(t, 401)
}

func TestCSRFIsRequiredForCookieWritesOnly(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("gina", false)
	csrf := c.CSRF
	body := map[string]any{"name": "ci"}
	for _, bad := range []string{"", "not-the-token", csrf + "x"} {
		c.CSRF = bad
		if r := c.Post("/api/v1/tokens", body); r.Status != 403 || r.ErrorCode() != "csrf" {
			t.Errorf("CSRF %q: %d %s", bad, r.Status, r.Body)
		}
	}
	// Another session's token is not this session's token.
	other := env.Login("gina", apitest.DefaultPassword)
	c.CSRF = other.CSRF
	c.Post("/api/v1/tokens", body).Want(t, 403)
	c.CSRF = csrf
	var created restapi.TokenCreated
	c.Post("/api/v1/tokens", body).Want(t, 201).Decode(t, &created)
	// Reads need no token; bearer requests need none either.
	c.CSRF = ""
	c.Get("/api/v1/tokens").Want(t, 200)
	tc := env.TokenClient(created.Token)
	tc.Post("/api/v1/tokens", map[string]any{"name": "from-ci"}).Want(t, 201)
}

func TestDisabledUserLosesSessionsAndTokens(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("hank", false)
	tok, _ := env.NewToken(c.User.ID, "ci", nil)
	tc := env.TokenClient(tok)
	tc.Get("/api/v1/me").Want(t, 200)
	env.Admin.Patch(apitest.Path("/users/%d", c.User.ID), map[string]any{"active": false}).Want(t, 200)
	c.Get("/api/v1/me").Want(t, 401)
	tc.Get("/api/v1/me").Want(t, 401)
	r := env.Anonymous().Post("/api/v1/auth/login", map[string]string{"username": "hank", "password": apitest.DefaultPassword})
	if r.Status != 403 || r.ErrorCode() != "account_disabled" {
		t.Fatalf("login of disabled user: %d %s", r.Status, r.Body)
	}
	// A disabled user with a wrong password learns nothing more.
	env.Anonymous().Post("/api/v1/auth/login", map[string]string{"username": "hank", "password": "wrong-password-1"}).Want(t, 401)
	// Enabling the user again does not bring the tokens back.
	env.Admin.Patch(apitest.Path("/users/%d", c.User.ID), map[string]any{"active": true}).Want(t, 200)
	tc.Get("/api/v1/me").Want(t, 401)
	c = env.Login("hank", apitest.DefaultPassword)
	var list restapi.List[restapi.APIToken]
	c.Get("/api/v1/tokens").Want(t, 200).Decode(t, &list)
	if list.Total != 1 || list.Items[0].RevokedAt == nil {
		t.Errorf("hank's tokens after being disabled: %+v", list.Items)
	}
}

func TestAPITokensShownOnceRevocableAndExpiring(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("ivy", false)
	var created restapi.TokenCreated
	c.Post("/api/v1/tokens", map[string]any{"name": "laptop", "expires_in_days": 1}).Want(t, 201).Decode(t, &created)
	if !strings.HasPrefix(created.Token, "nlo_") || created.Prefix != created.Token[:10] || created.ExpiresAt == nil {
		t.Fatalf("created token: %+v", created)
	}
	var list restapi.List[map[string]any]
	c.Get("/api/v1/tokens").Want(t, 200).Decode(t, &list)
	if list.Total != 1 || strings.Contains(string(c.Get("/api/v1/tokens").Body), created.Token) {
		t.Fatalf("token list: %+v", list)
	}
	tc := env.TokenClient(created.Token)
	var me restapi.Me
	tc.Get("/api/v1/me").Want(t, 200).Decode(t, &me)
	if me.User.Username != "ivy" || me.Via != "token" || me.CSRFToken != "" {
		t.Fatalf("me via token: %+v", me)
	}
	// Same permissions as the owner: not admin.
	tc.Get("/api/v1/users").Want(t, 403)
	// Expiry.
	env.Clock.Advance(24*time.Hour + time.Second)
	tc.Get("/api/v1/me").Want(t, 401)
	c = env.Login("ivy", apitest.DefaultPassword) // the session idled out too

	// Revocation, by the owner only.
	tok2, t2 := env.NewToken(c.User.ID, "ci", nil)
	tc2 := env.TokenClient(tok2)
	tc2.Get("/api/v1/me").Want(t, 200)
	other := env.UserClient("jack", false)
	other.Delete(apitest.Path("/tokens/%d", t2.ID)).Want(t, 404)
	tc2.Get("/api/v1/me").Want(t, 200)
	c.Delete(apitest.Path("/tokens/%d", t2.ID)).Want(t, 204)
	tc2.Get("/api/v1/me").Want(t, 401)
	// Malformed and unknown tokens.
	for _, h := range []string{"Bearer nlo_short", "Bearer " + strings.Repeat("a", 47), "Basic Zm9vOmJhcg=="} {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Authorization %q: %d", h, resp.StatusCode)
		}
	}
	// Bad requests name the field.
	r := c.Post("/api/v1/tokens", map[string]any{"name": "", "expires_in_days": 0}).Want(t, 400)
	if !strings.Contains(string(r.Body), `"name"`) || !strings.Contains(string(r.Body), `"expires_in_days"`) {
		t.Errorf("validation: %s", r.Body)
	}
}

func TestPasswordChangeAndAdminReset(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("kate", false)
	elsewhere := env.Login("kate", apitest.DefaultPassword)
	r := c.Put("/api/v1/me/password", map[string]string{"current_password": "wrong-password-1", "new_password": "new-password-456"}).Want(t, 400)
	if !strings.Contains(string(r.Body), "current_password") {
		t.Errorf("wrong current password: %s", r.Body)
	}
	r = c.Put("/api/v1/me/password", map[string]string{"current_password": apitest.DefaultPassword, "new_password": "short"}).Want(t, 400)
	if !strings.Contains(string(r.Body), "new_password") {
		t.Errorf("short password: %s", r.Body)
	}
	c.Put("/api/v1/me/password", map[string]string{"current_password": apitest.DefaultPassword, "new_password": "new-password-456"}).Want(t, 204)
	c.Get("/api/v1/me").Want(t, 200)         // this session stays
	elsewhere.Get("/api/v1/me").Want(t, 401) // the others end
	env.Anonymous().Post("/api/v1/auth/login", map[string]string{"username": "kate", "password": apitest.DefaultPassword}).Want(t, 401)
	env.Login("kate", "new-password-456")

	env.Admin.Put(apitest.Path("/users/%d/password", c.User.ID), map[string]string{"password": "reset-password-789"}).Want(t, 204)
	c.Get("/api/v1/me").Want(t, 401)
	env.Login("kate", "reset-password-789")
	env.Admin.Put("/api/v1/users/999999/password", map[string]string{"password": "reset-password-789"}).Want(t, 404)
}
