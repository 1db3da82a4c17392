package api_test

import (
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

func TestTeamsAndMembers(t *testing.T) {
	env := apitest.New(t)
	var team restapi.Team
	env.Admin.Post("/api/v1/teams", map[string]any{"name": "qa", "description": "testers"}).Want(t, 201).Decode(t, &team)
	env.Admin.Post("/api/v1/teams", map[string]any{"name": "qa"}).Want(t, 409)
	env.Admin.Post("/api/v1/teams", map[string]any{"name": " "}).Want(t, 400)
	u := env.User("mia", false)
	env.Admin.Put(apitest.Path("/teams/%d/members/%d", team.ID, u.ID), nil).Want(t, 204)
	env.Admin.Put(apitest.Path("/teams/%d/members/%d", team.ID, u.ID), nil).Want(t, 204) // idempotent
	env.Admin.Put(apitest.Path("/teams/%d/members/%d", team.ID, 99999), nil).Want(t, 404)
	env.Admin.Put(apitest.Path("/teams/%d/members/%d", 99999, u.ID), nil).Want(t, 404)

	var members restapi.List[restapi.TeamMember]
	env.Admin.Get(apitest.Path("/teams/%d/members", team.ID)).Want(t, 200).Decode(t, &members)
	if members.Total != 1 || members.Items[0].Username != "mia" {
		t.Fatalf("members: %+v", members)
	}
	var me restapi.Me
	env.Session(u).Get("/api/v1/me").Want(t, 200).Decode(t, &me)
	if len(me.Teams) != 1 || me.Teams[0].Name != "qa" || me.Teams[0].Members != 1 {
		t.Fatalf("me.teams: %+v", me.Teams)
	}
	env.Admin.Patch(apitest.Path("/teams/%d", team.ID), map[string]any{"name": "quality"}).Want(t, 200).Decode(t, &team)
	if team.Name != "quality" || team.Description != "testers" {
		t.Errorf("patched team: %+v", team)
	}
	env.Admin.Delete(apitest.Path("/teams/%d/members/%d", team.ID, u.ID)).Want(t, 204)
	env.Admin.Delete(apitest.Path("/teams/%d/members/%d", team.ID, u.ID)).Want(t, 404)
	env.Admin.Delete(apitest.Path("/teams/%d", team.ID)).Want(t, 204)
	env.Admin.Get(apitest.Path("/teams/%d", team.ID)).Want(t, 404)
	env.Admin.Get(apitest.Path("/teams/%d/members", team.ID)).Want(t, 404)
}
