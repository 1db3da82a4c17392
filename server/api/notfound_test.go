package api_test

import (
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/api/apitest"
)

// For every route of a project, environment or deployment resource, a
// caller without any grant gets the very same answer (status and body) for
// a resource that exists but is not theirs as for one that does not exist.
func TestNotYoursLooksExactlyLikeDoesNotExist(t *testing.T) {
	answersAlike(t, 404, "routes hide resources from users without grants",
		func(string) bool { return true },
		func(f *fixture) {
			for _, name := range []string{"project", "environment", "deployment", "node", "token", "team", "user"} {
				if _, ok := f.values[name]; ok {
					f.Set(name, 2_000_000_000)
				}
			}
		})
}

// Admin-only routes about one resource (nodes, secrets, teams, users,
// registries, services, plugins, …) answer a user the same whether the
// resource exists or not: the refusal comes before the lookup.
func TestAdminOnlyRoutesDoNotTellWhatExists(t *testing.T) {
	answersAlike(t, 403, "admin-only routes name a resource",
		func(route string) bool { return strings.Contains(route, ":") },
		func(f *fixture) {
			for name, v := range f.values {
				if _, err := strconv.ParseInt(v, 10, 64); err == nil {
					f.Set(name, 2_000_000_000)
				}
			}
		})
}

// answersAlike runs every registered route of the matrix that answers a
// caller without grants with status (and that pick keeps) twice: naming
// resources that exist, then, after forget renames them, resources that do
// not. Both answers must be status with the same body.
func answersAlike(t *testing.T, status int, what string, pick func(route string) bool, forget func(f *fixture)) {
	m := newMatrixEnv(t)
	registered := map[string]bool{}
	for _, r := range m.env.App.Echo.Routes() {
		if r.Method != echo.RouteNotFound {
			registered[r.Method+" "+r.Path] = true
		}
	}
	var keys []string
	byKey := map[string]route{}
	for _, r := range matrix {
		want := r.Rule(noGrant, r.OK)
		if w, ok := r.Want[noGrant]; ok {
			want = w
		}
		if want != status || !registered[r.Route] || !pick(r.Route) {
			continue
		}
		keys = append(keys, r.Route)
		byKey[r.Route] = r
	}
	sort.Strings(keys)
	if len(keys) < 10 {
		t.Fatalf("only %d %s: %v", len(keys), what, keys)
	}
	for _, key := range keys {
		r := byKey[key]
		method, path, _ := strings.Cut(key, " ")
		if r.Path == "" {
			r.Path = defaultPath(path)
		}
		t.Run(key, func(t *testing.T) {
			f, c := m.fixture(t, noGrant)
			var body any
			if r.Body != "" {
				body = f.expand(r.Body)
			}
			exists := c.Do(method, f.expand(r.Path), body)
			forget(f)
			if r.Body != "" {
				body = f.expand(r.Body)
			}
			missing := c.Do(method, f.expand(r.Path), body)
			if exists.Status != status || missing.Status != exists.Status || string(missing.Body) != string(exists.Body) {
				t.Errorf("exists: %d %s\ndoes not exist: %d %s", exists.Status, exists.Body, missing.Status, missing.Body)
			}
		})
	}
}

// Tokens belong to their owner: another user's token and a token that does
// not exist answer alike.
func TestAnotherUsersTokenLooksLikeNoToken(t *testing.T) {
	env := apitest.New(t)
	owner := env.User("tess", false)
	_, tok := env.NewToken(owner.ID, "ci", nil)
	other := env.UserClient("uma", false)
	notYours := other.Delete(apitest.Path("/tokens/%d", tok.ID))
	missing := other.Delete(apitest.Path("/tokens/%d", tok.ID+1000))
	if notYours.Status != 404 || missing.Status != 404 || string(notYours.Body) != string(missing.Body) {
		t.Fatalf("not yours: %d %s\ndoes not exist: %d %s", notYours.Status, notYours.Body, missing.Status, missing.Body)
	}
}
