package api_test

import (
	"context"
	"encoding/json"

	"github.com/nullops/nullops/server/store"
)

// Catalog routes in the authorization matrix. Reads: registries, plugins
// and secrets admin-only; services for every user; projects and
// environments for users holding a grant on them, or any grant of the
// other kind (a project grant covers that project in every environment, an
// environment grant every project in it) — hence the Want overrides.
// Registry test/tags answer 502 for admins: the fixture registry is down.
func init() {
	seesProject := map[identity]int{fullEnv: 200}
	seesEnv := map[identity]int{readProject: 200}
	graph := `{"nodes":[{"id":"web","kind":"service","service":"{catalog_websvc}"}],"edges":[]}`
	matrix = append(matrix,
		route{Route: "GET /api/v1/registries", Rule: adminOnly, OK: 200},
		route{Route: "POST /api/v1/registries", Rule: adminOnly, OK: 201, Body: `{"name":"r-new-{team}","url":"http://127.0.0.1:1","username":"u","password":"registry-pw-{team}"}`},
		route{Route: "GET /api/v1/registries/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/registries/{catalog_registry}"},
		route{Route: "PUT /api/v1/registries/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/registries/{catalog_registry}", Body: `{"name":"r-upd-{team}","url":"http://127.0.0.1:1"}`},
		route{Route: "DELETE /api/v1/registries/:id", Rule: adminOnly, OK: 204, Path: "/api/v1/registries/{catalog_registry}"},
		route{Route: "POST /api/v1/registries/:id/test", Rule: adminOnly, OK: 502, Path: "/api/v1/registries/{catalog_registry}/test"},
		route{Route: "GET /api/v1/registries/:id/tags", Rule: adminOnly, OK: 502, Path: "/api/v1/registries/{catalog_registry}/tags?image=demo/web&pattern=v*"},

		route{Route: "GET /api/v1/services", Rule: anyUser, OK: 200},
		route{Route: "POST /api/v1/services", Rule: adminOnly, OK: 201, Body: `{"name":"s-new-{team}","registry_id":1,"image":"library/nginx","tag_mode":"pinned","tag":"1.27"}`},
		route{Route: "GET /api/v1/services/:id", Rule: anyUser, OK: 200, Path: "/api/v1/services/{catalog_service}"},
		route{Route: "PUT /api/v1/services/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/services/{catalog_service}", Body: `{"name":"s-upd-{team}","registry_id":1,"image":"library/nginx","tag_mode":"selectable","tag_pattern":"1.*"}`},
		route{Route: "DELETE /api/v1/services/:id", Rule: adminOnly, OK: 204, Path: "/api/v1/services/{catalog_service}"},
		route{Route: "GET /api/v1/services/:id/tags", Rule: anyUser, OK: 200, Path: "/api/v1/services/{catalog_service}/tags"},

		route{Route: "GET /api/v1/plugins", Rule: adminOnly, OK: 200},
		route{Route: "POST /api/v1/plugins", Rule: adminOnly, OK: 201, Body: `{"name":"pl-new-{team}","registry_id":1,"image":"nullops/noop","tag":"v1","params_schema":{"type":"object"}}`},
		route{Route: "GET /api/v1/plugins/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/plugins/{catalog_plugin}"},
		route{Route: "PUT /api/v1/plugins/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/plugins/{catalog_plugin}", Body: `{"name":"pl-upd-{team}","registry_id":1,"image":"nullops/noop","tag":"v2","timeout":"90s"}`},
		route{Route: "DELETE /api/v1/plugins/:id", Rule: adminOnly, OK: 204, Path: "/api/v1/plugins/{catalog_plugin}"},

		route{Route: "GET /api/v1/secrets", Rule: adminOnly, OK: 200},
		route{Route: "POST /api/v1/secrets", Rule: adminOnly, OK: 201, Body: `{"name":"s_new_{team}","value":"secret-value-{team}"}`},
		route{Route: "GET /api/v1/secrets/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/secrets/{catalog_secret}"},
		route{Route: "PUT /api/v1/secrets/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/secrets/{catalog_secret}", Body: `{"value":"changed-secret-{team}"}`},
		route{Route: "DELETE /api/v1/secrets/:id", Rule: adminOnly, OK: 204, Path: "/api/v1/secrets/{catalog_secret}"},
		route{Route: "GET /api/v1/projects/:id/secrets", Rule: projectRead, OK: 200, Want: seesProject},

		route{Route: "GET /api/v1/environments", Rule: anyUser, OK: 200},
		route{Route: "POST /api/v1/environments", Rule: adminOnly, OK: 201, Body: `{"name":"e-new-{team}","base_domain":"qa.example.com","default_ttl":"72h"}`},
		route{Route: "GET /api/v1/environments/:id", Rule: envRead, OK: 200, Want: seesEnv},
		route{Route: "PUT /api/v1/environments/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/environments/{catalog_environment}", Body: `{"name":"e-upd-{team}","base_domain":"qa.example.com"}`},
		route{Route: "DELETE /api/v1/environments/:id", Rule: adminOnly, OK: 204, Path: "/api/v1/environments/{catalog_environment}"},

		route{Route: "GET /api/v1/projects", Rule: anyUser, OK: 200},
		route{Route: "POST /api/v1/projects", Rule: adminOnly, OK: 201, Body: `{"name":"p-new-{team}","cpu":2,"memory_mb":1024,"ttl":"24h","node_selector":{"match_labels":{"tier":"qa"}}}`},
		route{Route: "GET /api/v1/projects/:id", Rule: projectRead, OK: 200, Want: seesProject},
		route{Route: "PUT /api/v1/projects/:id", Rule: adminOnly, OK: 200, Path: "/api/v1/projects/{catalog_project}", Body: `{"name":"p-upd-{team}"}`},
		route{Route: "DELETE /api/v1/projects/:id", Rule: adminOnly, OK: 204, Path: "/api/v1/projects/{catalog_project}"},

		route{Route: "GET /api/v1/projects/:id/pipeline", Rule: projectRead, OK: 200, Want: seesProject},
		route{Route: "PUT /api/v1/projects/:id/pipeline", Rule: adminOnly, OK: 201, Body: graph},
		route{Route: "POST /api/v1/projects/:id/pipeline/dry-run", Rule: adminOnly, OK: 200, Body: graph},
		route{Route: "GET /api/v1/projects/:id/pipeline/versions", Rule: projectRead, OK: 200, Want: seesProject},
		route{Route: "GET /api/v1/projects/:id/pipeline/versions/:version", Rule: projectRead, OK: 200, Want: seesProject,
			Path: "/api/v1/projects/{project}/pipeline/versions/{catalog_version}"},
	)

	fixtures = append(fixtures, func(f *fixture) {
		ctx := context.Background()
		pool := f.Env.Store.Pool
		sfx := randSuffix()
		must := func(err error) {
			if err != nil {
				f.T.Fatal(err)
			}
		}
		reg, err := store.CreateRegistry(ctx, pool, store.RegistryInput{Name: "r-" + sfx, URL: "http://127.0.0.1:1"})
		must(err)
		f.Set("catalog_registry", reg.ID)
		sv, err := store.CreateService(ctx, pool, store.ServiceInput{Name: "s-" + sfx, RegistryID: 1, Image: "library/nginx", TagMode: store.TagModePinned, Tag: "1.27"})
		must(err)
		f.Set("catalog_service", sv.ID)
		sv2, err := store.CreateService(ctx, pool, store.ServiceInput{Name: "s2-" + sfx, RegistryID: 1, Image: "library/nginx", TagMode: store.TagModePinned, Tag: "1.27"})
		must(err)
		f.Set("catalog_websvc", sv2.Name)
		pl, err := store.CreatePlugin(ctx, pool, store.PluginInput{Name: "pl-" + sfx, RegistryID: 1, Image: "nullops/noop", Tag: "v1",
			CPU: 0.5, MemoryMB: 64, TimeoutSeconds: 300, JoinNetwork: true})
		must(err)
		f.Set("catalog_plugin", pl.ID)
		id, err := store.CreateSecret(ctx, pool, "s_"+sfx, nil, nil)
		must(err)
		f.Set("catalog_secret", id)
		e, err := store.CreateEnvironment(ctx, pool, store.EnvironmentInput{Name: "ce-" + sfx, BaseDomain: "x.test", DefaultTTLSeconds: 3600})
		must(err)
		f.Set("catalog_environment", e.ID)
		p, err := store.CreateProject(ctx, pool, store.ProjectInput{Name: "cp-" + sfx, CPU: 1, MemoryMB: 256})
		must(err)
		f.Set("catalog_project", p.ID)
		g, _ := json.Marshal(map[string]any{"nodes": []map[string]any{{"id": "web", "kind": "service", "service": sv2.Name}}, "edges": [][2]string{}})
		must(f.Env.Store.InTx(ctx, func(tx *store.Store) error {
			v, err := store.InsertPipelineVersion(ctx, tx, f.Project, g, nil, nil)
			f.Set("catalog_version", v.Version)
			return err
		}))
	})
}
