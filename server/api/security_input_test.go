package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/api"
	"github.com/nullops/nullops/server/api/apitest"
)

// stringLeaves returns the paths of every string in a decoded JSON value,
// with a setter for each.
func stringLeaves(v any, set func(any), out *[]func(string)) {
	switch x := v.(type) {
	case string:
		*out = append(*out, func(s string) { set(s) })
	case map[string]any:
		for k, e := range x {
			stringLeaves(e, func(n any) { x[k] = n }, out)
		}
	case []any:
		for i, e := range x {
			stringLeaves(e, func(n any) { x[i] = n }, out)
		}
	}
}

// Every route that takes a JSON body answers 400 — never 500 — when any
// string in it holds a NUL character or the body is not valid UTF-8.
func TestTextThatCannotBeStoredIsRefusedInEveryBody(t *testing.T) {
	m := newMatrixEnv(t)
	registered := map[string]bool{}
	for _, r := range m.env.App.Echo.Routes() {
		if r.Method != echo.RouteNotFound {
			registered[r.Method+" "+r.Path] = true
		}
	}
	var entries []route
	for _, r := range matrix {
		// As an admin; routes for machines (the ingress token) are left out.
		if r.Body != "" && registered[r.Route] && r.Rule(admin, r.OK) < 300 {
			entries = append(entries, r)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Route < entries[j].Route })
	if len(entries) < 10 {
		t.Fatalf("only %d routes with bodies", len(entries))
	}
	checked := 0
	for _, r := range entries {
		method, path, _ := strings.Cut(r.Route, " ")
		if r.Path == "" {
			r.Path = defaultPath(path)
		}
		t.Run(r.Route, func(t *testing.T) {
			f, c := m.fixture(t, admin)
			body := f.expand(r.Body)
			var doc any
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("matrix body %s: %v", body, err)
			}
			var leaves []func(string)
			stringLeaves(doc, func(any) {}, &leaves)
			for i := range leaves {
				// A fresh copy per leaf: NUL in this string only.
				var d any
				_ = json.Unmarshal([]byte(body), &d)
				var ls []func(string)
				stringLeaves(d, func(any) {}, &ls)
				ls[i]("x\x00y")
				b, _ := json.Marshal(d)
				resp := c.Do(method, f.expand(r.Path), b)
				checked++
				if resp.Status != 400 {
					t.Errorf("NUL in string %d of %s: %d %s", i, b, resp.Status, resp.Body)
				}
			}
			// Invalid UTF-8 anywhere in the body.
			bad := strings.Replace(body, `"`, "\"\xff", 1)
			if resp := c.Do(method, f.expand(r.Path), []byte(bad)); resp.Status != 400 {
				t.Errorf("invalid UTF-8 in %q: %d %s", bad, resp.Status, resp.Body)
			}
		})
	}
	t.Logf("%d routes, %d strings checked", len(entries), checked)
}

func TestUnstorableInputAnswers400(t *testing.T) {
	env := apitest.New(t)
	anon := env.Anonymous()
	for name, c := range map[string]struct {
		client *apitest.Client
		method string
		path   string
		body   any
		field  string
	}{
		"login NUL username":        {anon, "POST", "/api/v1/auth/login", `{"username":"ad\u0000min","password":"whatever-password"}`, "username"},
		"login NUL password":        {anon, "POST", "/api/v1/auth/login", `{"username":"admin","password":"pw\u0000pw-pw-pw-pw"}`, "password"},
		"login invalid UTF-8":       {anon, "POST", "/api/v1/auth/login", "{\"username\":\"ad\xffmin\",\"password\":\"whatever-password\"}", ""},
		"query NUL":                 {env.Admin, "GET", "/api/v1/audit?action=user.%00", nil, "action"},
		"query invalid UTF-8":       {env.Admin, "GET", "/api/v1/audit?actor=%ff%fe", nil, "actor"},
		"query NUL unauthenticated": {anon, "GET", "/api/v1/me?x=%00", nil, "x"},
		"path NUL":                  {env.Admin, "GET", "/api/v1/projects/%00", nil, "path"},
		"team name zero-width":      {env.Admin, "POST", "/api/v1/teams", map[string]string{"name": "qa\u200bteam"}, "name"},
		"team name bidi override":   {env.Admin, "POST", "/api/v1/teams", map[string]string{"name": "qa\u202eteam"}, "name"},
		"team name control":         {env.Admin, "POST", "/api/v1/teams", map[string]string{"name": "qa\x1bteam"}, "name"},
		"token name newline":        {env.Admin, "POST", "/api/v1/tokens", map[string]string{"name": "ci\ntoken"}, "name"},
		"display name bidi":         {env.Admin, "POST", "/api/v1/users", map[string]string{"username": "mallory", "password": "a-long-password-1", "display_name": "admin\u202e"}, "display_name"},
	} {
		r := c.client.Do(c.method, c.path, c.body)
		if r.Status != 400 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
			continue
		}
		if c.field != "" && !strings.Contains(string(r.Body), fmt.Sprintf("%q:", c.field)) {
			t.Errorf("%s: the error does not name %s: %s", name, c.field, r.Body)
		}
	}
	// A plain team name with accents is fine.
	env.Admin.Post("/api/v1/teams", map[string]string{"name": "Équipe Zürich"}).Want(t, 201)
}

// Bodies over the limit answer 413, whether declared up front or streamed.
func TestOversizedBodiesAnswer413(t *testing.T) {
	env := apitest.New(t)
	big := `{"name":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	r := env.Admin.Post("/api/v1/teams", big)
	if r.Status != http.StatusRequestEntityTooLarge || r.ErrorCode() != "too_large" {
		t.Errorf("declared length: %d %s", r.Status, r.Body)
	}
	// Chunked, without Content-Length.
	req, err := http.NewRequest(http.MethodPost, env.URL+"/api/v1/teams", struct{ *strings.Reader }{strings.NewReader(big)})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	env.Admin.Prepare(req)
	resp, err := env.Admin.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength > 0 {
		t.Errorf("streamed: %d (content length %d)", resp.StatusCode, req.ContentLength)
	}
	// The unauthenticated login too.
	r = env.Anonymous().Post("/api/v1/auth/login", big)
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("login: %d %s", r.Status, r.Body)
	}
}
