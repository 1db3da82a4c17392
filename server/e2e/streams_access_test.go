package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// streamCloseLimit is how long an open stream may outlive the caller's
// access.
const streamCloseLimit = 5 * time.Second

// sessionUser is a logged-in user holding both a browser session (cookie
// jar + CSRF token) and an API token created through that session.
type sessionUser struct {
	id      int64
	team    int64
	jar     http.CookieJar
	csrf    string
	token   string
	tokenID int64
}

// newSessionUser creates a user in a new team with read access to the
// project and logs them in.
func (w *world) newSessionUser(t *testing.T, name string) *sessionUser {
	t.Helper()
	u := &sessionUser{}
	u.id = idOf(t, w.admin.post("/users", map[string]any{"username": name, "password": userPass}).want(t, 201))
	u.team = idOf(t, w.admin.post("/teams", map[string]any{"name": name + "-team"}).want(t, 201))
	w.admin.put(fmt.Sprintf("/teams/%d/members/%d", u.team, u.id), nil).want(t, 204)
	w.admin.put(fmt.Sprintf("/projects/%d/access/%d", w.project, u.team), map[string]any{"level": "read"}).want(t, 200)
	u.jar, _ = cookiejar.New(nil)
	b, _ := json.Marshal(map[string]string{"username": name, "password": userPass})
	st, body := u.do(t, w.srv.URL, "POST", "/auth/login", b)
	if st != 200 {
		t.Fatalf("login %s: %d %s", name, st, body)
	}
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.Unmarshal(body, &me)
	u.csrf = me.CSRF
	st, body = u.do(t, w.srv.URL, "POST", "/tokens", []byte(`{"name":"streams"}`))
	if st != 201 {
		t.Fatalf("create token: %d %s", st, body)
	}
	var tok struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &tok)
	u.token, u.tokenID = tok.Token, tok.ID
	return u
}

// do sends a session-authenticated request.
func (u *sessionUser) do(t *testing.T, base, method, path string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, base+"/api/v1"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if u.csrf != "" {
		req.Header.Set("X-CSRF-Token", u.csrf)
	}
	resp, err := (&http.Client{Jar: u.jar, Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// openStream is one open streaming response being read to its end.
type openStream struct {
	name  string
	out   *testutil.SyncBuffer
	ended chan time.Time
}

// open starts a streaming GET as u (by session cookie, or by API token
// when byToken) and waits until its first bytes containing ready arrived.
func (u *sessionUser) open(t *testing.T, ctx context.Context, base, path, accept, ready string, byToken bool) *openStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1"+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	hc := &http.Client{}
	if byToken {
		req.Header.Set("Authorization", "Bearer "+u.token)
	} else {
		hc.Jar = u.jar
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	s := &openStream{name: path, out: &testutil.SyncBuffer{}, ended: make(chan time.Time, 1)}
	go func() {
		defer resp.Body.Close()
		_, _ = io.Copy(s.out, resp.Body)
		s.ended <- time.Now()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.out.String(), ready) {
		select {
		case <-s.ended:
			t.Fatalf("%s ended before %q: %q", path, ready, s.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q within 60s: %q", path, ready, s.out.String())
		}
	}
	return s
}

// TestStreamsEndWhenAccessEnds: the "all deployments" event stream, a
// deployment's event stream and a followed service log close within 5 s
// after the grant is removed, the API token revoked, the session logged
// out or the user disabled — each stream saying why.
func TestStreamsEndWhenAccessEnds(t *testing.T) {
	t.Parallel()
	w := setup(t)
	d := create(t, w.dev, w.project, w.envID, "streams", "v1.0.0")
	waitStatus(t, w.dev, d.ID, "running", 3*time.Minute)

	cases := []struct {
		name    string
		byToken bool
		end     func(t *testing.T, u *sessionUser)
	}{
		{"grant removed", true, func(t *testing.T, u *sessionUser) {
			w.admin.del(fmt.Sprintf("/projects/%d/access/%d", w.project, u.team)).want(t, 204)
		}},
		{"token revoked", true, func(t *testing.T, u *sessionUser) {
			if st, b := u.do(t, w.srv.URL, "DELETE", fmt.Sprintf("/tokens/%d", u.tokenID), nil); st/100 != 2 {
				t.Fatalf("revoke token: %d %s", st, b)
			}
		}},
		{"session logged out", false, func(t *testing.T, u *sessionUser) {
			if st, b := u.do(t, w.srv.URL, "POST", "/auth/logout", nil); st/100 != 2 {
				t.Fatalf("logout: %d %s", st, b)
			}
		}},
		{"user disabled", false, func(t *testing.T, u *sessionUser) {
			w.admin.do("PATCH", fmt.Sprintf("/users/%d", u.id), map[string]any{"active": false}).want(t, 200)
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := w.newSessionUser(t, fmt.Sprintf("streamer%d", i))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			streams := []*openStream{
				u.open(t, ctx, w.srv.URL, "/events", "", "event: hello", tc.byToken),
				u.open(t, ctx, w.srv.URL, fmt.Sprintf("/deployments/%d/events", d.ID), "", "event: deployment", tc.byToken),
				u.open(t, ctx, w.srv.URL, fmt.Sprintf("/deployments/%d/logs?service=web&tail=5&follow=true", d.ID), "", "listening", tc.byToken),
			}
			tc.end(t, u)
			ended := time.Now()
			deadline := ended.Add(streamCloseLimit)
			for _, s := range streams {
				var at time.Time
				limit := time.NewTimer(max(0, time.Until(deadline)))
				select {
				case at = <-s.ended:
				case <-limit.C:
					select {
					case at = <-s.ended:
					default:
						t.Fatalf("%s still open %v after access ended: %q", s.name, streamCloseLimit, s.out.String())
					}
				}
				limit.Stop()
				t.Logf("%s closed %v after access ended", s.name, at.Sub(ended).Round(time.Millisecond))
				if out := s.out.String(); !strings.Contains(out, "access ended") {
					t.Errorf("%s did not say why it ended: %q", s.name, out)
				}
			}
		})
	}
}
