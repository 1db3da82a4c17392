package hae2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// sessionClient is a browser: a cookie jar and the CSRF token of its
// session, sending to whichever base it is given.
type sessionClient struct {
	hc   *http.Client
	csrf string
}

func (s *sessionClient) do(t *testing.T, base, method, path string, body any) int {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, base+"/api/v1"+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.csrf != "" && method != "GET" {
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	res, err := s.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s via %s: %v", method, path, base, err)
	}
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if out.CSRF != "" {
		s.csrf = out.CSRF
	}
	return res.StatusCode
}

// A session opened on one replica works on every other (sessions live in
// PostgreSQL); logging out on one ends it on all; the login throttle counts
// failures over all replicas: a client going round the load balancer meets
// one allowance, not one per replica.
func TestSessionsAndLoginThrottleAreSharedByReplicas(t *testing.T) {
	t.Parallel()
	w := startWorld(t, 3)
	r1, r2, r3 := w.c.Replicas[0].URL(), w.c.Replicas[1].URL(), w.c.Replicas[2].URL()
	jar, _ := cookiejar.New(nil)
	s := &sessionClient{hc: &http.Client{Jar: jar, Timeout: time.Minute}}
	// Cookies are per host name, not port: the jar sends the session to
	// every replica on 127.0.0.1 as a browser would to one load balancer.
	if st := s.do(t, r1, "POST", "/auth/login", map[string]string{"username": adminUser, "password": adminPass}); st != 200 {
		t.Fatalf("login on r1: %d", st)
	}
	for _, base := range []string{r2, r3, w.c.URL} {
		if st := s.do(t, base, "GET", "/me", nil); st != 200 {
			t.Fatalf("the session of r1 on %s: %d", base, st)
		}
	}
	if st := s.do(t, r3, "POST", "/tokens", map[string]string{"name": "from-r3"}); st != 201 {
		t.Fatalf("a change with the CSRF token of r1's session on r3: %d", st)
	}
	if st := s.do(t, r2, "POST", "/auth/logout", nil); st != 204 && st != 200 {
		t.Fatalf("logout on r2: %d", st)
	}
	if st := s.do(t, r1, "GET", "/me", nil); st != 401 {
		t.Fatalf("the session after logging out on another replica: %d", st)
	}

	// 5 failures per (username, address) are free, spread round robin
	// over the replicas; the 6th is refused whichever replica gets it.
	w.admin.must(t, "POST", "/users", map[string]any{"username": "ann", "password": "ann-password-123456"}, 201)
	bases := []string{r1, r2, r3, w.c.URL}
	for i := range 5 {
		anon := &sessionClient{hc: &http.Client{Timeout: time.Minute}}
		if st := anon.do(t, bases[i%3], "POST", "/auth/login", map[string]string{"username": "ann", "password": "wrong-password-1"}); st != 401 {
			t.Fatalf("failure %d: %d", i+1, st)
		}
	}
	for _, base := range bases {
		anon := &sessionClient{hc: &http.Client{Timeout: time.Minute}}
		if st := anon.do(t, base, "POST", "/auth/login", map[string]string{"username": "ann", "password": "ann-password-123456"}); st != 429 {
			t.Fatalf("attempt after 5 failures via %s: %d, want 429 (the throttle is per replica?)", base, st)
		}
	}
}

// Graceful shutdown drains: the replica turns unready while it still
// serves, HAProxy takes it out, then it stops; meanwhile every request
// through the balancer succeeds.
func TestGracefulStopDrainsThroughTheBalancer(t *testing.T) {
	t.Parallel()
	w := startWorld(t, 2)
	ctx := testutil.Context(t, 2*time.Minute)
	r := w.c.Replicas[0]
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.Stop(t) }()
	// While it drains it still answers, but unready.
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "r1 unready while draining", func() bool {
		res, err := http.Get(r.URL() + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 503
	})
	failed, total := 0, 0
	for {
		select {
		case <-stopped:
		default:
			total++
			if st, _, err := w.admin.do("GET", "/me", nil); err != nil || st != 200 {
				failed++
			}
			continue
		}
		break
	}
	w.c.WaitState(t, ctx, r, false)
	if failed > 0 {
		t.Fatalf("%d of %d requests through the balancer failed while r1 drained", failed, total)
	}
	t.Logf("%d requests through the balancer while r1 drained, none failed", total)
}
