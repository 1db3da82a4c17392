package api_test

import (
	"time"

	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/auth"
)

// TestGrantsDecideAccess changes grants through the API and checks what a
// user can then see, through the access endpoints and the audit log.
func TestGrantsDecideAccess(t *testing.T) {
	env := apitest.New(t)
	p1, p2 := env.Project("shop"), env.Project("blog")
	e1 := env.Environment("staging")
	u := env.User("noah", false)
	team := env.Team("web", u.ID)
	noah := env.Session(u)

	noah.Get(apitest.Path("/projects/%d/access", p1)).Want(t, 404)
	var g restapi.Grant
	env.Admin.Put(apitest.Path("/projects/%d/access/%d", p1, team), map[string]string{"level": "read"}).Want(t, 200).Decode(t, &g)
	if g.Level != "read" || g.TeamName != "web" || g.ProjectID == nil || *g.ProjectID != p1 {
		t.Fatalf("grant: %+v", g)
	}
	var grants restapi.List[restapi.Grant]
	noah.Get(apitest.Path("/projects/%d/access", p1)).Want(t, 200).Decode(t, &grants)
	if grants.Total != 1 || grants.Items[0].Level != "read" {
		t.Fatalf("grants: %+v", grants)
	}
	noah.Get(apitest.Path("/projects/%d/access", p2)).Want(t, 404)
	noah.Get(apitest.Path("/environments/%d/access", e1)).Want(t, 404)
	// Upsert to full, then an environment grant.
	env.Admin.Put(apitest.Path("/projects/%d/access/%d", p1, team), map[string]string{"level": "full"}).Want(t, 200)
	env.Admin.Put(apitest.Path("/environments/%d/access/%d", e1, team), map[string]string{"level": "read"}).Want(t, 200)
	noah.Get(apitest.Path("/environments/%d/access", e1)).Want(t, 200)

	lvl, err := env.App.Auth.Level(t.Context(), &auth.Principal{UserID: u.ID}, p1, e1)
	if err != nil || lvl != auth.Full {
		t.Fatalf("level on p1/e1: %v %v", lvl, err)
	}
	lvl, _ = env.App.Auth.Level(t.Context(), &auth.Principal{UserID: u.ID}, p2, e1)
	if lvl != auth.Read {
		t.Fatalf("level on p2/e1 (via environment): %v", lvl)
	}

	// Validation and missing targets.
	env.Admin.Put(apitest.Path("/projects/%d/access/%d", p1, team), map[string]string{"level": "owner"}).Want(t, 400)
	env.Admin.Put(apitest.Path("/projects/%d/access/%d", 99999, team), map[string]string{"level": "read"}).Want(t, 404)
	env.Admin.Put(apitest.Path("/projects/%d/access/%d", p1, 99999), map[string]string{"level": "read"}).Want(t, 404)

	// The user sees audit entries about what they can see, not the rest.
	var audit restapi.List[restapi.AuditEntry]
	noah.Get("/api/v1/audit").Want(t, 200).Decode(t, &audit)
	if audit.Total != 3 {
		t.Fatalf("noah sees %d audit entries, want the 3 grant changes on p1/e1: %+v", audit.Total, audit.Items)
	}
	env.Admin.Delete(apitest.Path("/projects/%d/access/%d", p1, team)).Want(t, 204)
	env.Admin.Delete(apitest.Path("/projects/%d/access/%d", p1, team)).Want(t, 404)
	env.Admin.Delete(apitest.Path("/environments/%d/access/%d", e1, team)).Want(t, 204)
	noah.Get(apitest.Path("/projects/%d/access", p1)).Want(t, 404)
	noah.Get("/api/v1/audit").Want(t, 200).Decode(t, &audit)
	if audit.Total != 0 {
		t.Fatalf("without grants noah still sees %d audit entries", audit.Total)
	}
	env.Admin.Get("/api/v1/audit?target_type=project").Want(t, 200).Decode(t, &audit)
	if audit.Total != 3 {
		t.Errorf("admin sees %d project access entries, want 3", audit.Total)
	}
}

func TestAuditFiltersAndPaging(t *testing.T) {
	env := apitest.New(t)
	for _, n := range []string{"t1", "t2", "t3"} {
		env.Admin.Post("/api/v1/teams", map[string]any{"name": n}).Want(t, 201)
	}
	var audit restapi.List[restapi.AuditEntry]
	env.Admin.Get("/api/v1/audit?action=team.create&per_page=2").Want(t, 200).Decode(t, &audit)
	if audit.Total != 3 || len(audit.Items) != 2 || audit.PerPage != 2 {
		t.Fatalf("page 1: %+v", audit)
	}
	first := audit.Items[0]
	if first.ActorName != apitest.AdminUsername || first.ActorID == nil || first.TargetType != "team" || first.ClientAddr == "" {
		t.Errorf("entry: %+v", first)
	}
	env.Admin.Get("/api/v1/audit?action=team.create&per_page=2&page=2").Want(t, 200).Decode(t, &audit)
	if len(audit.Items) != 1 || audit.Items[0].ID >= first.ID {
		t.Fatalf("page 2: %+v", audit)
	}
	since := first.CreatedAt.Add(-time.Second).UTC().Format("2006-01-02T15:04:05.999999999Z07:00")
	env.Admin.Get("/api/v1/audit?actor=admin&since="+since).Want(t, 200).Decode(t, &audit)
	if audit.Total < 3 {
		t.Errorf("since filter: %d", audit.Total)
	}
	env.Admin.Get("/api/v1/audit?until=1").Want(t, 200).Decode(t, &audit)
	if audit.Total != 0 {
		t.Errorf("until 1970: %d", audit.Total)
	}
	env.Admin.Get("/api/v1/audit?actor=nobody").Want(t, 200).Decode(t, &audit)
	if audit.Total != 0 || audit.Items == nil {
		t.Errorf("empty list must be [] not null: %+v", audit)
	}
	r := env.Admin.Get("/api/v1/audit?since=yesterday&page=0").Want(t, 400)
	var e restapi.ErrorBody
	r.Decode(t, &e)
	if e.Error.Details["since"] == "" || e.Error.Details["page"] == "" {
		t.Errorf("validation names neither since nor page: %s", r.Body)
	}
}
