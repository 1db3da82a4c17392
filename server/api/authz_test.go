package api_test

// The authorization matrix: every route echo knows must have an entry in
// `matrix` (authz_matrix_test.go, or appended from an area's own test file
// with `func init() { matrix = append(matrix, ...) }`), and every entry is
// called as five identities on fresh fixtures, asserting the status.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// identity is who calls a route in the matrix.
type identity int

const (
	anonymous   identity = iota
	noGrant              // a user in a team without any grant on the fixture
	readProject          // a user whose team has read on the fixture project
	fullEnv              // a user whose team has full on the fixture environment
	admin                // an admin
	numIdentities
)

func (i identity) String() string {
	return [...]string{"anonymous", "user-without-grants", "user-read-via-project", "user-full-via-environment", "admin"}[i]
}

// rule gives the expected status of a route for an identity, where ok is the
// status of an allowed call.
type rule func(id identity, ok int) int

var (
	// public: everyone gets ok.
	public rule = func(_ identity, ok int) int { return ok }
	// machine: authenticated by a machine token (e.g. the ingress token), so
	// no user credential is accepted.
	machine rule = func(identity, int) int { return http.StatusUnauthorized }
	// anyUser: every authenticated user gets ok.
	anyUser rule = func(id identity, ok int) int { return unless(id == anonymous, 401, ok) }
	// adminOnly: users get 403.
	adminOnly rule = func(id identity, ok int) int {
		switch id {
		case anonymous:
			return 401
		case admin:
			return ok
		}
		return 403
	}
	// A resource of the fixture project only ({project}).
	projectRead = level(true, false, auth.Read)
	// A resource of the fixture environment only ({environment}).
	envRead = level(false, true, auth.Read)
	// A deployment of the fixture project in the fixture environment ({deployment}).
	deploymentRead = level(true, true, auth.Read)
	deploymentFull = level(true, true, auth.Full)
)

func unless(cond bool, then, otherwise int) int {
	if cond {
		return then
	}
	return otherwise
}

// level builds the rule of a resource governed by the project and/or the
// environment grant: no level → 404, read when full is needed → 403.
func level(onProject, onEnv bool, need auth.Level) rule {
	return func(id identity, ok int) int {
		have := auth.None
		switch id {
		case anonymous:
			return 401
		case admin:
			have = auth.Full
		case readProject:
			if onProject {
				have = auth.Read
			}
		case fullEnv:
			if onEnv {
				have = auth.Full
			}
		}
		switch {
		case have == auth.None:
			return 404
		case have < need:
			return 403
		}
		return ok
	}
}

// route is one matrix entry.
type route struct {
	Route string // "METHOD /path/:param" exactly as registered
	Rule  rule
	OK    int    // status of an allowed call with Body
	Body  string // JSON body; {placeholders} are replaced with fixture values
	Path  string // concrete path; default: Route's path with :params → {placeholders}
	// Want overrides the rule for some identities.
	Want map[identity]int
}

// fixture is what one matrix call runs against: fresh resources, so calls
// that change or delete something do not affect the next ones.
type fixture struct {
	T           testing.TB
	Env         *apitest.Env
	Caller      store.User // zero for anonymous
	Project     int64
	Environment int64
	values      map[string]string
}

// Set defines a {placeholder}.
func (f *fixture) Set(name string, v any) { f.values[name] = fmt.Sprint(v) }

// fixtureHook adds resources to a fixture (other areas append theirs, e.g.
// a deployment of f.Project in f.Environment as {deployment}).
type fixtureHook func(f *fixture)

var fixtures []fixtureHook

func init() {
	fixtures = append(fixtures, func(f *fixture) {
		ctx := context.Background()
		u := f.Env.User("victim-"+randSuffix(), false)
		f.Set("user", u.ID)
		t, err := store.CreateTeam(ctx, f.Env.Store.Pool, "team-"+randSuffix(), "")
		if err != nil {
			f.T.Fatal(err)
		}
		if err := store.AddTeamMember(ctx, f.Env.Store.Pool, t.ID, u.ID); err != nil {
			f.T.Fatal(err)
		}
		f.Env.Grant(t.ID, store.ScopeProject, f.Project, auth.Read)
		f.Env.Grant(t.ID, store.ScopeEnvironment, f.Environment, auth.Read)
		f.Set("team", t.ID)
		owner := f.Caller.ID
		if owner == 0 {
			owner = u.ID
		}
		_, tok := f.Env.NewToken(owner, "matrix", nil)
		f.Set("token", tok.ID)
	})
}

func randSuffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// defaultPath turns "/api/v1/projects/:id/access/:team_id" into
// "/api/v1/projects/{project}/access/{team}".
func defaultPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		name, ok := strings.CutPrefix(s, ":")
		if !ok {
			continue
		}
		switch {
		case name == "id" && i > 0:
			prev := segs[i-1]
			switch {
			case strings.HasSuffix(prev, "ies"):
				name = strings.TrimSuffix(prev, "ies") + "y"
			default:
				name = strings.TrimSuffix(prev, "s")
			}
		case strings.HasSuffix(name, "_id"):
			name = strings.TrimSuffix(name, "_id")
		}
		segs[i] = "{" + name + "}"
	}
	return strings.Join(segs, "/")
}

var placeholderRE = regexp.MustCompile(`\{([a-z_]+)\}`)

func (f *fixture) expand(s string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := f.values[name]
		if !ok {
			f.T.Fatalf("fixture has no {%s}: add a fixtureHook that sets it (see authz_test.go)", name)
		}
		return v
	})
}

// matrixEnv is the shared server of a matrix run with one user per identity.
type matrixEnv struct {
	env      *apitest.Env
	users    [numIdentities]store.User
	readTeam int64
	fullTeam int64
}

func newMatrixEnv(t *testing.T) *matrixEnv {
	env := apitest.New(t)
	m := &matrixEnv{env: env}
	m.users[noGrant] = env.User("m-nogrant", false)
	m.users[readProject] = env.User("m-read", false)
	m.users[fullEnv] = env.User("m-full", false)
	m.users[admin] = env.User("m-admin", true)
	m.readTeam = env.Team("m-readers", m.users[readProject].ID)
	m.fullTeam = env.Team("m-fulls", m.users[fullEnv].ID)
	env.Team("m-nothing", m.users[noGrant].ID)
	return m
}

func (m *matrixEnv) fixture(t *testing.T, id identity) (*fixture, *apitest.Client) {
	f := &fixture{T: t, Env: m.env, Caller: m.users[id], values: map[string]string{}}
	f.Project = m.env.Project("p-" + randSuffix())
	f.Environment = m.env.Environment("e-" + randSuffix())
	m.env.Grant(m.readTeam, store.ScopeProject, f.Project, auth.Read)
	m.env.Grant(m.fullTeam, store.ScopeEnvironment, f.Environment, auth.Full)
	f.Set("project", f.Project)
	f.Set("environment", f.Environment)
	for _, h := range fixtures {
		h(f)
	}
	if id == anonymous {
		return f, m.env.Anonymous()
	}
	return f, m.env.Session(m.users[id])
}

func TestAuthorizationMatrix(t *testing.T) {
	m := newMatrixEnv(t)
	secrets := scanResponses(t, m.env)

	entries := map[string]route{}
	for _, r := range matrix {
		if _, dup := entries[r.Route]; dup {
			t.Errorf("matrix: %s listed twice", r.Route)
		}
		entries[r.Route] = r
	}
	var routes []string
	for _, r := range m.env.App.Echo.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		routes = append(routes, r.Method+" "+r.Path)
	}
	sort.Strings(routes)
	seen := map[string]bool{}
	for _, key := range routes {
		if seen[key] {
			continue
		}
		seen[key] = true
		r, ok := entries[key]
		if !ok {
			t.Errorf("route %s has no entry in the authorization matrix (server/api/authz_matrix_test.go)", key)
			continue
		}
		method, path, _ := strings.Cut(key, " ")
		if r.Path == "" {
			r.Path = defaultPath(path)
		}
		for id := anonymous; id < numIdentities; id++ {
			want := r.Rule(id, r.OK)
			if w, ok := r.Want[id]; ok {
				want = w
			}
			t.Run(key+"/"+id.String(), func(t *testing.T) {
				f, c := m.fixture(t, id)
				var body any
				if r.Body != "" {
					body = f.expand(r.Body)
				}
				resp := c.Do(method, f.expand(r.Path), body)
				if resp.Status != want {
					t.Errorf("%s %s as %s: status %d, want %d: %.300s", method, f.expand(r.Path), id, resp.Status, want, resp.Body)
				}
			})
		}
	}
	for key := range entries {
		if !seen[key] {
			t.Errorf("matrix entry %s matches no registered route; remove or fix it", key)
		}
	}
	secrets.check(t)
}
