package api_test

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/api/apitest"
)

// TestAPIDocListsEveryRoute keeps docs/api.md complete: every route the
// server mounts must appear there as `METHOD /path`.
func TestAPIDocListsEveryRoute(t *testing.T) {
	env := apitest.New(t)
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var missing []string
	for _, r := range env.App.Echo.Routes() {
		key := r.Method + " " + r.Path
		if r.Method == echo.RouteNotFound || seen[key] || strings.HasPrefix(r.Path, "/assets") || r.Path == "/" || r.Path == "/*" {
			continue
		}
		seen[key] = true
		if !strings.Contains(string(doc), "`"+key+"`") {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("docs/api.md does not document `%s`", m)
	}
}
