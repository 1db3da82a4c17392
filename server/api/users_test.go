package api_test

import (
	"strings"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

func TestAdminManagesUsers(t *testing.T) {
	env := apitest.New(t)
	var u restapi.User
	env.Admin.Post("/api/v1/users", map[string]any{"username": "lena", "display_name": " Lena L ", "password": "lena-password-1"}).
		Want(t, 201).Decode(t, &u)
	if u.Username != "lena" || u.DisplayName != "Lena L" || u.Role != "user" || !u.Active {
		t.Fatalf("created %+v", u)
	}
	// The new user can log in.
	lena := env.Login("lena", "lena-password-1")
	r := env.Admin.Post("/api/v1/users", map[string]any{"username": "lena", "password": "lena-password-1"}).Want(t, 409)
	if !strings.Contains(string(r.Body), "taken") {
		t.Errorf("duplicate: %s", r.Body)
	}
	r = env.Admin.Post("/api/v1/users", map[string]any{"username": "Bad Name", "password": "short", "role": "root"}).Want(t, 400)
	var e restapi.ErrorBody
	r.Decode(t, &e)
	for _, f := range []string{"username", "password", "role"} {
		if e.Error.Details[f] == "" {
			t.Errorf("validation does not name %s: %s", f, r.Body)
		}
	}
	env.Admin.Post("/api/v1/users", map[string]any{"username": "x", "password": "long-enough-pw", "extra": 1}).Want(t, 400)

	var list restapi.List[restapi.User]
	env.Admin.Get("/api/v1/users?per_page=1&page=2").Want(t, 200).Decode(t, &list)
	if list.Total != 2 || len(list.Items) != 1 || list.Page != 2 || list.PerPage != 1 || list.Items[0].Username != "lena" {
		t.Fatalf("page 2 of users: %+v", list)
	}
	env.Admin.Get("/api/v1/users?q=LEN").Want(t, 200).Decode(t, &list)
	if list.Total != 1 {
		t.Errorf("search: %+v", list)
	}
	env.Admin.Get("/api/v1/users?per_page=1000").Want(t, 400)

	// Promote lena; she is then admin for a new session's requests.
	env.Admin.Patch(apitest.Path("/users/%d", u.ID), map[string]any{"role": "admin"}).Want(t, 200)
	lena.Get("/api/v1/users").Want(t, 200)
	env.Admin.Patch(apitest.Path("/users/%d", u.ID), map[string]any{"role": "user"}).Want(t, 200)
	lena.Get("/api/v1/users").Want(t, 403)

	env.Admin.Delete(apitest.Path("/users/%d", u.ID)).Want(t, 204)
	lena.Get("/api/v1/me").Want(t, 401)
	env.Admin.Get(apitest.Path("/users/%d", u.ID)).Want(t, 404)
	env.Admin.Get("/api/v1/users/abc").Want(t, 404)

	var audit restapi.List[restapi.AuditEntry]
	env.Admin.Get("/api/v1/audit?action=user.*").Want(t, 200).Decode(t, &audit)
	got := []string{}
	for _, a := range audit.Items {
		got = append(got, a.Action)
	}
	// Newest first; the bootstrap admin's creation comes last.
	want := "user.delete user.update user.update user.create user.create"
	if strings.Join(got, " ") != want {
		t.Errorf("audit actions %q, want %q", strings.Join(got, " "), want)
	}
}

func TestTheLastAdminCannotBeRemoved(t *testing.T) {
	env := apitest.New(t)
	me := env.Admin.User
	for _, patch := range []map[string]any{{"role": "user"}, {"active": false}} {
		r := env.Admin.Patch(apitest.Path("/users/%d", me.ID), patch)
		if r.Status != 409 || r.ErrorCode() != "last_admin" {
			t.Errorf("patch %v of the last admin: %d %s", patch, r.Status, r.Body)
		}
	}
	env.Admin.Delete(apitest.Path("/users/%d", me.ID)).Want(t, 409)
	// With a second admin, the first can step down.
	env.User("second", true)
	env.Admin.Patch(apitest.Path("/users/%d", me.ID), map[string]any{"role": "user"}).Want(t, 200)
	env.Admin.Get("/api/v1/users").Want(t, 403)
}
