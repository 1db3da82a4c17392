package api_test

import (
	"testing"

	"github.com/nullops/nullops/server/api/apitest"
)

// Responses that carry a token or secret material (and every other API
// answer) tell browsers and proxies not to keep them.
func TestTokenAndSecretResponsesAreNotStored(t *testing.T) {
	env := apitest.New(t)
	envID := env.Environment("qa")
	var node nodeCreated
	var sec struct {
		ID int64 `json:"id"`
	}
	responses := map[string]*apitest.Response{
		"login":         env.Anonymous().Post("/api/v1/auth/login", map[string]string{"username": apitest.AdminUsername, "password": apitest.AdminPassword}).Want(t, 200),
		"token create":  env.Admin.Post("/api/v1/tokens", map[string]any{"name": "ci"}).Want(t, 201),
		"node create":   env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{"name": "n1", "host": "10.0.0.1"}).Want(t, 201),
		"secret create": env.Admin.Post(apitest.Path("/secrets"), map[string]any{"name": "db_password", "value": "s3cr3t-value"}).Want(t, 201),
		"me":            env.Admin.Get("/api/v1/me").Want(t, 200),
		"error":         env.Admin.Get("/api/v1/nodes/999999").Want(t, 404),
	}
	responses["node create"].Decode(t, &node)
	responses["secret create"].Decode(t, &sec)
	responses["node rotate"] = env.Admin.Post(apitest.Path("/nodes/%d/rotate-token", node.Node.ID), nil).Want(t, 200)
	responses["secret read"] = env.Admin.Get(apitest.Path("/secrets/%d", sec.ID)).Want(t, 200)
	for name, r := range responses {
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, got)
		}
	}
}
