package api_test

import "context"

// The deployment routes in the authorization matrix. The fixture
// deployment ({deployment}) runs on a node that is offline, so a delete is
// remembered (202) and logs answer 503; the fixture project has no usable
// pipeline, so a permitted create stops at 409 after the permission check.
func init() {
	fixtures = append(fixtures, func(f *fixture) {
		ctx := context.Background()
		q := func(sql string, args ...any) int64 {
			var id int64
			if err := f.Env.Store.Pool.QueryRow(ctx, sql, args...).Scan(&id); err != nil {
				f.T.Fatalf("deployment fixture %q: %v", sql, err)
			}
			return id
		}
		node := q(`INSERT INTO nodes (environment_id, name, host, port, status) VALUES ($1, 'n-'||$2, '127.0.0.1', 5000, 'offline') RETURNING id`,
			f.Environment, randSuffix())
		pv := q(`INSERT INTO pipeline_versions (project_id, version, graph) VALUES ($1, 1, '{"nodes":[],"edges":[]}') RETURNING id`, f.Project)
		dep := q(`INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status, cpu, memory_mb, ttl_seconds, expires_at)
			VALUES ('d-'||$1, $2, $3, $4, $5, 'running', 0.5, 256, 3600, now() + interval '1 hour') RETURNING id`,
			randSuffix(), f.Project, f.Environment, node, pv)
		q(`INSERT INTO deployment_services (deployment_id, node_key, image, tag, ingress) VALUES ($1, 'web', 'demo/web', 'v1', TRUE) RETURNING deployment_id`, dep)
		q(`INSERT INTO deployment_steps (deployment_id, node_key, kind, status) VALUES ($1, 'web', 'service', 'succeeded') RETURNING deployment_id`, dep)
		f.Set("deployment", dep)
		f.Set("step", "web")
	})
	matrix = append(matrix,
		route{Route: "GET /api/v1/deployments", Rule: anyUser, OK: 200},
		route{Route: "POST /api/v1/deployments", Rule: deploymentFull, OK: 409,
			Body: `{"project_id":{project},"environment_id":{environment},"name":"matrix","tags":{}}`},
		route{Route: "POST /api/v1/placement/dry-run", Rule: deploymentFull, OK: 200, // no node online: fits false
			Body: `{"project_id":{project},"environment_id":{environment},"tags":{}}`},
		route{Route: "GET /api/v1/deployments/:id", Rule: deploymentRead, OK: 200},
		route{Route: "DELETE /api/v1/deployments/:id", Rule: deploymentFull, OK: 202},
		route{Route: "POST /api/v1/deployments/:id/cancel", Rule: deploymentFull, OK: 409}, // running: delete it instead
		route{Route: "POST /api/v1/deployments/:id/retry", Rule: deploymentFull, OK: 409},  // only failed ones
		route{Route: "POST /api/v1/deployments/:id/extend", Rule: deploymentFull, OK: 200},
		route{Route: "POST /api/v1/deployments/:id/clone", Rule: deploymentFull, OK: 400, Body: `{"name":"Not A DNS Label"}`},
		route{Route: "GET /api/v1/deployments/:id/history", Rule: deploymentRead, OK: 200},
		route{Route: "GET /api/v1/deployments/:id/usage", Rule: deploymentRead, OK: 200},
		route{Route: "GET /api/v1/deployments/:id/steps/:step/logs", Rule: deploymentRead, OK: 200},
		route{Route: "GET /api/v1/deployments/:id/logs", Rule: deploymentRead, OK: 503, Path: "/api/v1/deployments/{deployment}/logs?service=web"},
		route{Route: "GET /api/v1/deployments/:id/events", Rule: deploymentRead, OK: 200, Path: "/api/v1/deployments/{deployment}/events?once=true"},
		route{Route: "GET /api/v1/events", Rule: anyUser, OK: 200, Path: "/api/v1/events?once=true"},
	)
}
