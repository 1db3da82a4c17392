package api_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/config"
)

// behindProxy trusts X-Forwarded-For from loopback, so clients can stand
// for different addresses.
func behindProxy(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} }

func from(c *apitest.Client, addr string) *apitest.Client {
	c.Header = http.Header{"X-Forwarded-For": {addr}}
	return c
}

func login(c *apitest.Client, user, pw string) *apitest.Response {
	return c.Post("/api/v1/auth/login", map[string]string{"username": user, "password": pw})
}

// 64 wrong passwords for one user sent at once: only the throttle's
// allowance is checked (each check is one argon2id computation, counted by
// the auth service); every other attempt is refused before any hashing.
func TestConcurrentWrongPasswordsAreRefusedBeforeHashing(t *testing.T) {
	env := apitest.New(t, behindProxy)
	env.User("victim", false)
	before := env.App.Auth.HashStats().Runs
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			c := from(env.Anonymous(), "203.0.113.9")
			<-start
			r := login(c, "victim", "wrong-password-"+strconv.Itoa(i))
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Status]++
			if r.Status == 429 || r.Status == 503 {
				if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
					t.Errorf("%d without Retry-After: %v", r.Status, r.Header)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	hashed := env.App.Auth.HashStats().Runs - before
	t.Logf("statuses %v, passwords hashed %d, pool %d slots", statuses, hashed, env.App.Auth.HashStats().Slots)
	// 401 = checked and wrong; 429 = throttled before hashing; 503 = the
	// hashing pool was full (nothing checked, so the attempt does not count).
	if statuses[401] > 5 || hashed != int64(statuses[401]) || statuses[401]+statuses[503] < 5 ||
		statuses[401]+statuses[429]+statuses[503] != 64 {
		t.Fatalf("statuses %v with %d hashes; want at most 5 checked (401), the rest 429/503 unhashed", statuses, hashed)
	}
}

// An attacker at one address cannot keep the owner out: throttling is per
// (username, address) and per address, and it delays (1 min, 2 min, …)
// rather than locks.
func TestAnAttackedAccountStillOpensFromAnotherAddress(t *testing.T) {
	env := apitest.New(t, behindProxy)
	env.User("owner", false)
	attacker := from(env.Anonymous(), "203.0.113.66")
	for i := range 30 {
		r := login(attacker, "owner", "guess-number-"+strconv.Itoa(i))
		if want := 401; i >= 5 {
			want = 429
			if r.Status != want {
				t.Fatalf("attempt %d: %d %s", i, r.Status, r.Body)
			}
		} else if r.Status != want {
			t.Fatalf("attempt %d: %d %s", i, r.Status, r.Body)
		}
	}
	// The owner, elsewhere, logs in with the right password.
	owner := from(env.Anonymous(), "198.51.100.20")
	login(owner, "owner", apitest.DefaultPassword).Want(t, 200)
	// The attacker's delay grows: after one minute one more guess, then two minutes.
	env.Clock.Advance(time.Minute + time.Second)
	login(attacker, "owner", "guess-again-1").Want(t, 401)
	r := login(attacker, "owner", "guess-again-2").Want(t, 429)
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 110 || ra > 120 {
		t.Errorf("second delay Retry-After %q, want about 2 minutes", r.Header.Get("Retry-After"))
	}
	login(owner, "owner", apitest.DefaultPassword).Want(t, 200)
}

// PUT /me/password checks a password like a login does, so a stolen
// session cannot be used to guess the current password at full speed.
func TestPasswordChangeIsThrottledLikeLogin(t *testing.T) {
	env := apitest.New(t, behindProxy)
	c := from(env.UserClient("lena", false), "192.0.2.44")
	for i := range 5 {
		c.Put("/api/v1/me/password", map[string]string{"current_password": "not-it-" + strconv.Itoa(i), "new_password": "a-fresh-password-77"}).Want(t, 400)
	}
	r := c.Put("/api/v1/me/password", map[string]string{"current_password": apitest.DefaultPassword, "new_password": "a-fresh-password-77"}).Want(t, 429)
	if r.ErrorCode() != "too_many_attempts" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("throttled password change: %v %s", r.Header, r.Body)
	}
	// The same budget as logins from that address.
	login(from(env.Anonymous(), "192.0.2.44"), "lena", apitest.DefaultPassword).Want(t, 429)
	env.Clock.Advance(time.Minute + time.Second)
	c.Put("/api/v1/me/password", map[string]string{"current_password": apitest.DefaultPassword, "new_password": "a-fresh-password-77"}).Want(t, 204)
}

func TestATokenCannotCreateATokenThatOutlivesIt(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("mona", false)
	var parent restapi.TokenCreated
	c.Post("/api/v1/tokens", map[string]any{"name": "ci", "expires_in_days": 2}).Want(t, 201).Decode(t, &parent)
	tc := env.TokenClient(parent.Token)
	for _, body := range []map[string]any{
		{"name": "forever"},
		{"name": "longer", "expires_in_days": 3},
		{"name": "later", "expires_at": parent.ExpiresAt.Add(time.Minute)},
	} {
		r := tc.Post("/api/v1/tokens", body).Want(t, 400)
		if !strings.Contains(string(r.Body), "expire no later than itself") {
			t.Errorf("%v: %s", body, r.Body)
		}
	}
	var child restapi.TokenCreated
	tc.Post("/api/v1/tokens", map[string]any{"name": "shorter", "expires_in_days": 1}).Want(t, 201).Decode(t, &child)
	if child.ExpiresAt == nil || child.ExpiresAt.After(*parent.ExpiresAt) {
		t.Fatalf("child expires %v, parent %v", child.ExpiresAt, parent.ExpiresAt)
	}
	// A session (or a token without expiry) is not limited.
	c.Post("/api/v1/tokens", map[string]any{"name": "forever"}).Want(t, 201)
}

func TestAdminPasswordResetRevokesTokensAndSessions(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("nina", false)
	tok, _ := env.NewToken(c.User.ID, "ci", nil)
	tc := env.TokenClient(tok)
	tc.Get("/api/v1/me").Want(t, 200)
	env.Admin.Put(apitest.Path("/users/%d/password", c.User.ID), map[string]string{"password": "reset-by-admin-2026"}).Want(t, 204)
	c.Get("/api/v1/me").Want(t, 401)
	tc.Get("/api/v1/me").Want(t, 401)
	var list restapi.List[restapi.AuditEntry]
	env.Admin.Get("/api/v1/audit?action=user.password_reset").Want(t, 200).Decode(t, &list)
	if list.Total != 1 || !strings.Contains(string(mustJSON(t, list.Items[0].Detail)), `"tokens_revoked":1`) {
		t.Errorf("reset audit: %+v", list.Items)
	}
	// Changing one's own password keeps one's tokens (documented).
	c = env.Login("nina", "reset-by-admin-2026")
	tok2, _ := env.NewToken(c.User.ID, "ci2", nil)
	c.Put("/api/v1/me/password", map[string]string{"current_password": "reset-by-admin-2026", "new_password": "nina-chose-this-one"}).Want(t, 204)
	env.TokenClient(tok2).Get("/api/v1/me").Want(t, 200)
}

// Changing one's own password revokes one's tokens when asked to, in the
// same request; the session making the change stays.
func TestOwnPasswordChangeRevokesTokensWhenAsked(t *testing.T) {
	env := apitest.New(t)
	c := env.UserClient("olga", false)
	tok1, _ := env.NewToken(c.User.ID, "ci", nil)
	tok2, _ := env.NewToken(c.User.ID, "laptop", nil)
	other := env.UserClient("pia", false)
	otherTok, _ := env.NewToken(other.User.ID, "ci", nil)
	c.Put("/api/v1/me/password", map[string]any{"current_password": apitest.DefaultPassword, "new_password": "olga-rotated-after-leak",
		"revoke_tokens": true}).Want(t, 204)
	env.TokenClient(tok1).Get("/api/v1/me").Want(t, 401)
	env.TokenClient(tok2).Get("/api/v1/me").Want(t, 401)
	c.Get("/api/v1/me").Want(t, 200)
	env.TokenClient(otherTok).Get("/api/v1/me").Want(t, 200)
	var list restapi.List[restapi.APIToken]
	c.Get("/api/v1/tokens").Want(t, 200).Decode(t, &list)
	for _, tk := range list.Items {
		if tk.RevokedAt == nil {
			t.Errorf("token %s not revoked", tk.Name)
		}
	}
	var audit restapi.List[restapi.AuditEntry]
	env.Admin.Get("/api/v1/audit?action=user.password_change").Want(t, 200).Decode(t, &audit)
	if audit.Total != 1 || !strings.Contains(string(mustJSON(t, audit.Items[0].Detail)), `"tokens_revoked":2`) {
		t.Errorf("change audit: %+v", audit.Items)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// New passwords are refused with a field error when short, only
// whitespace or common; the first admin's password follows the same rules.
func TestWeakPasswordsAreRefusedWithFieldErrors(t *testing.T) {
	env := apitest.New(t)
	for pw, want := range map[string]string{
		"short":                  "at least 12 characters",
		"              ":         "only whitespace",
		"Password1234":           "most common passwords",
		"qwertyuiopasdfghjkl":    "most common passwords",
		"bad\x00password-inside": "NUL characters",
	} {
		r := env.Admin.Post("/api/v1/users", map[string]string{"username": "weak", "password": pw}).Want(t, 400)
		var e restapi.ErrorBody
		r.Decode(t, &e)
		if !strings.Contains(e.Error.Details["password"], want) {
			t.Errorf("password %q: %s, want details.password about %q", pw, r.Body, want)
		}
	}
	c := env.UserClient("oscar", false)
	r := c.Put("/api/v1/me/password", map[string]string{"current_password": apitest.DefaultPassword, "new_password": "letmein12345"}).Want(t, 400)
	if !strings.Contains(string(r.Body), `"new_password":"is one of the most common passwords`) {
		t.Errorf("common new password: %s", r.Body)
	}
	env.Admin.Put(apitest.Path("/users/%d/password", c.User.ID), map[string]string{"password": "welcome12345"}).Want(t, 400)
}
