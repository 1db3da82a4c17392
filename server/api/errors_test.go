package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

// strictError decodes an error response into the one error body and fails
// unless it has exactly {"error":{"code","message"[,"details"]}}.
func strictError(t *testing.T, what string, r *apitest.Response) restapi.Error {
	t.Helper()
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &raw); err != nil || len(raw) != 1 || raw["error"] == nil {
		t.Fatalf("%s: body is not the error shape: %d %s", what, r.Status, r.Body)
	}
	for k := range raw["error"] {
		if k != "code" && k != "message" && k != "details" {
			t.Errorf("%s: unexpected key %q in %s", what, k, r.Body)
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	var body restapi.ErrorBody
	if err := dec.Decode(&body); err != nil || body.Error == nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("%s: error body %s: %v", what, r.Body, err)
	}
	body.Error.Status = r.Status
	return *body.Error
}

// TestRegistryFailureSameFromEveryRoute: whichever route asks the registry
// (connection test, tag listing of a registry or of a service, creating a
// deployment), a registry that is down, refuses the credentials or does not
// have the image answers with the same status and code.
func TestRegistryFailureSameFromEveryRoute(t *testing.T) {
	const user, pass = "ci", "registry-pass-7c2"
	reg := testutil.StartRegistry(t, user, pass)
	env := apitest.New(t)
	adm := env.Admin

	var r, svc, project, environment idBody
	adm.Post(apitest.Path("/registries"), map[string]any{"name": "private", "url": "http://" + reg.Host, "username": user, "password": pass}).
		Want(t, 201).Decode(t, &r)
	adm.Post(apitest.Path("/services"), map[string]any{"name": "web", "registry_id": r.ID, "image": "demo/web",
		"tag_mode": "selectable", "tag_pattern": "v*", "ports": []int{8080}}).Want(t, 201).Decode(t, &svc)
	adm.Post(apitest.Path("/projects"), map[string]any{"name": "shop", "cpu": 1, "memory_mb": 512}).Want(t, 201).Decode(t, &project)
	adm.Put(apitest.Path("/projects/%d/pipeline", project.ID), `{"nodes":[{"id":"web","kind":"service","service":"web","port":8080}]}`).Want(t, 201)
	adm.Post(apitest.Path("/environments"), map[string]any{"name": "qa", "base_domain": "qa.example.com", "default_ttl": "1h"}).
		Want(t, 201).Decode(t, &environment)

	routes := map[string]func() *apitest.Response{
		"POST /registries/:id/test": func() *apitest.Response { return adm.Post(apitest.Path("/registries/%d/test", r.ID), nil) },
		"GET /registries/:id/tags": func() *apitest.Response {
			return adm.Get(apitest.Path("/registries/%d/tags?image=demo/web", r.ID))
		},
		"GET /services/:id/tags": func() *apitest.Response { return adm.Get(apitest.Path("/services/%d/tags", svc.ID)) },
		"POST /deployments": func() *apitest.Response {
			return adm.Post(apitest.Path("/deployments"), map[string]any{"project_id": project.ID, "environment_id": environment.ID,
				"name": "pr-1", "tags": map[string]string{"web": "v1.0.0"}})
		},
	}
	down := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	for _, tc := range []struct {
		name, url, password, image string
		status                     int
		code                       string
		skip                       string // a route that does not ask for an image
	}{
		{"down", down, pass, "demo/web", http.StatusBadGateway, "registry_unreachable", ""},
		{"wrong password", "http://" + reg.Host, "not-the-password", "demo/web", http.StatusBadGateway, "registry_unauthorized", ""},
		{"no such image", "http://" + reg.Host, pass, "demo/nothing", http.StatusNotFound, "image_not_found", "POST /registries/:id/test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adm.Put(apitest.Path("/registries/%d", r.ID), map[string]any{"name": "private", "url": tc.url, "username": user, "password": tc.password}).Want(t, 200)
			adm.Put(apitest.Path("/services/%d", svc.ID), map[string]any{"name": "web", "registry_id": r.ID, "image": tc.image,
				"tag_mode": "selectable", "tag_pattern": "v*", "ports": []int{8080}}).Want(t, 200)
			for route, call := range routes {
				if route == tc.skip {
					continue
				}
				if route == "GET /registries/:id/tags" {
					call = func() *apitest.Response {
						return adm.Get(apitest.Path("/registries/%d/tags?image=%s", r.ID, tc.image))
					}
				}
				resp := call()
				e := strictError(t, route, resp)
				if e.Status != tc.status || e.Code != tc.code || e.Details != nil {
					t.Errorf("%s: %d %s, want %d %s", route, resp.Status, resp.Body, tc.status, tc.code)
				}
			}
		})
	}
	var deps restapi.List[map[string]any]
	adm.Get(apitest.Path("/deployments")).Want(t, 200).Decode(t, &deps)
	if deps.Total != 0 {
		t.Fatalf("a refused create left %d deployments", deps.Total)
	}
}

// TestEveryFieldErrorHasTheOneShape: field problems found by the HTTP layer
// (query, path, body text, request checks), by the catalog, by the pipeline
// validator and by the deployment lifecycle all answer 400 with the one
// error body whose details name the field.
func TestEveryFieldErrorHasTheOneShape(t *testing.T) {
	env := apitest.New(t)
	adm := env.Admin
	ids := catalogFixture(t, env)
	adm.Put(apitest.Path("/projects/%d/pipeline", ids["shop"]), designGraph).Want(t, 201)

	for _, tc := range []struct {
		what  string
		call  func() *apitest.Response
		code  string
		field string
	}{
		{"paging", func() *apitest.Response { return adm.Get(apitest.Path("/users?page=0")) }, "invalid", "page"},
		{"query filter", func() *apitest.Response { return adm.Get(apitest.Path("/deployments?status=sleeping")) }, "invalid", "status"},
		{"body text", func() *apitest.Response {
			return adm.Post(apitest.Path("/teams"), `{"name":"a\u0000b"}`)
		}, "invalid", "name"},
		{"request check", func() *apitest.Response {
			return adm.Post(apitest.Path("/users"), map[string]any{"username": "", "password": "x"})
		}, "invalid", "username"},
		{"catalog", func() *apitest.Response {
			return adm.Post(apitest.Path("/services"), map[string]any{"name": "bad", "registry_id": 1, "image": "x",
				"tag_mode": "pinned", "tag": "1", "ports": []int{70000}})
		}, "invalid", "ports"},
		{"pipeline", func() *apitest.Response {
			return adm.Put(apitest.Path("/projects/%d/pipeline", ids["shop"]), `{"nodes":[{"id":"a","kind":"service","service":"nosuch"}]}`)
		}, "invalid_pipeline", "nodes.a.service"},
		{"deployment tags", func() *apitest.Response {
			return adm.Post(apitest.Path("/deployments"), map[string]any{"project_id": ids["shop"], "environment_id": ids["qa"],
				"name": "pr-1", "tags": map[string]string{"backend-api": "main"}})
		}, "invalid", "tags.backend-api"},
	} {
		resp := tc.call()
		e := strictError(t, tc.what, resp)
		if e.Status != http.StatusBadRequest || e.Code != tc.code || e.Details[tc.field] == "" {
			t.Errorf("%s: %d %s, want 400 %s naming %s", tc.what, resp.Status, resp.Body, tc.code, tc.field)
		}
	}
}
