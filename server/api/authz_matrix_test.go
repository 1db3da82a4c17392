package api_test

// matrix lists every route with the rule that governs it (see authz_test.go
// for rules, identities and fixture placeholders). One line per route; keep
// areas together. Areas may instead append from their own test file:
//
//	func init() { matrix = append(matrix, route{"GET /api/v1/things", anyUser, 200, "", "", nil}) }
var matrix = []route{
	// Infrastructure and UI.
	{Route: "GET /healthz", Rule: public, OK: 200},
	{Route: "GET /readyz", Rule: public, OK: 200},
	{Route: "GET /metrics", Rule: public, OK: 200},
	{Route: "GET /*", Rule: public, OK: 200, Path: "/"},
	{Route: "HEAD /*", Rule: public, OK: 200, Path: "/"},

	// Ingress (nullops-ingress authenticates with the ingress token, not as a user).
	{Route: "GET /api/v1/ingress/traefik", Rule: machine},
	{Route: "GET /api/v1/ingress/gone", Rule: machine},
	{Route: "POST /api/v1/ingress/activity", Rule: machine, Body: `{"deployments":[]}`},

	// Identity and access.
	{Route: "POST /api/v1/auth/login", Rule: public, OK: 401, Body: `{"username":"nobody","password":"wrong-password-1"}`},
	{Route: "POST /api/v1/auth/logout", Rule: anyUser, OK: 204},
	{Route: "GET /api/v1/me", Rule: anyUser, OK: 200},
	{Route: "PUT /api/v1/me/password", Rule: anyUser, OK: 204, Body: `{"current_password":"user-password-123","new_password":"user-password-123"}`},
	{Route: "GET /api/v1/tokens", Rule: anyUser, OK: 200},
	{Route: "POST /api/v1/tokens", Rule: anyUser, OK: 201, Body: `{"name":"ci"}`},
	{Route: "DELETE /api/v1/tokens/:id", Rule: anyUser, OK: 204},
	{Route: "GET /api/v1/users", Rule: adminOnly, OK: 200},
	{Route: "POST /api/v1/users", Rule: adminOnly, OK: 201, Body: `{"username":"new-{team}","password":"user-password-123"}`},
	{Route: "GET /api/v1/users/:id", Rule: adminOnly, OK: 200},
	{Route: "PATCH /api/v1/users/:id", Rule: adminOnly, OK: 200, Body: `{"display_name":"Renamed"}`},
	{Route: "DELETE /api/v1/users/:id", Rule: adminOnly, OK: 204},
	{Route: "PUT /api/v1/users/:id/password", Rule: adminOnly, OK: 204, Body: `{"password":"reset-password-123"}`},
	{Route: "GET /api/v1/teams", Rule: adminOnly, OK: 200},
	{Route: "POST /api/v1/teams", Rule: adminOnly, OK: 201, Body: `{"name":"new-{team}"}`},
	{Route: "GET /api/v1/teams/:id", Rule: adminOnly, OK: 200},
	{Route: "PATCH /api/v1/teams/:id", Rule: adminOnly, OK: 200, Body: `{"description":"changed"}`},
	{Route: "DELETE /api/v1/teams/:id", Rule: adminOnly, OK: 204},
	{Route: "GET /api/v1/teams/:id/members", Rule: adminOnly, OK: 200},
	{Route: "PUT /api/v1/teams/:id/members/:user_id", Rule: adminOnly, OK: 204},
	{Route: "DELETE /api/v1/teams/:id/members/:user_id", Rule: adminOnly, OK: 204},
	{Route: "GET /api/v1/projects/:id/access", Rule: projectRead, OK: 200},
	{Route: "PUT /api/v1/projects/:id/access/:team_id", Rule: adminOnly, OK: 200, Body: `{"level":"full"}`},
	{Route: "DELETE /api/v1/projects/:id/access/:team_id", Rule: adminOnly, OK: 204},
	{Route: "GET /api/v1/environments/:id/access", Rule: envRead, OK: 200},
	{Route: "PUT /api/v1/environments/:id/access/:team_id", Rule: adminOnly, OK: 200, Body: `{"level":"read"}`},
	{Route: "DELETE /api/v1/environments/:id/access/:team_id", Rule: adminOnly, OK: 204},
	{Route: "GET /api/v1/audit", Rule: anyUser, OK: 200},
}
