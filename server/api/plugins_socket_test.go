package api_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
)

// TestPluginDockerSocketIsAnAdminSettingInTheAuditLog: Docker socket
// access is a plugin field (default off, whatever the plugin's name), only
// admins can set it, every change of it is its own audit entry, and it
// reaches agents in the plugins update.
func TestPluginDockerSocketIsAnAdminSettingInTheAuditLog(t *testing.T) {
	env := apitest.New(t)
	adm := env.Admin
	type plugin struct {
		ID           int64 `json:"id"`
		DockerSocket bool  `json:"docker_socket"`
	}
	body := func(name string, socket *bool) map[string]any {
		b := map[string]any{"name": name, "registry_id": 1, "image": "nullops/plugin-" + name, "tag": "1.0.0"}
		if socket != nil {
			b["docker_socket"] = *socket
		}
		return b
	}
	yes, no := true, false

	var byName plugin
	adm.Post(apitest.Path("/plugins"), body("exec", nil)).Want(t, 201).Decode(t, &byName)
	if byName.DockerSocket {
		t.Fatal(`a plugin named "exec" got the Docker socket by default`)
	}
	var tool plugin
	adm.Post(apitest.Path("/plugins"), body("tool", &yes)).Want(t, 201).Decode(t, &tool)
	if !tool.DockerSocket {
		t.Fatal("docker_socket not stored")
	}

	u := env.UserClient("mallory", false)
	if r := u.Put(apitest.Path("/plugins/%d", byName.ID), body("exec", &yes)); r.Status != 403 {
		t.Fatalf("a user set docker_socket: %d %s", r.Status, r.Body)
	}

	adm.Put(apitest.Path("/plugins/%d", tool.ID), body("tool", &no)).Want(t, 200).Decode(t, &tool)
	if tool.DockerSocket {
		t.Fatal("docker_socket not cleared")
	}
	adm.Put(apitest.Path("/plugins/%d", tool.ID), body("tool", nil)).Want(t, 200) // unchanged: no entry

	var audit restapi.List[restapi.AuditEntry]
	adm.Get(apitest.Path("/audit?action=plugin.docker_socket")).Want(t, 200).Decode(t, &audit)
	if audit.Total != 2 {
		t.Fatalf("%d plugin.docker_socket entries, want 2 (enabled at create, disabled): %+v", audit.Total, audit.Items)
	}
	got := map[bool]bool{}
	for _, e := range audit.Items {
		var d map[string]any
		_ = json.Unmarshal(e.Detail, &d)
		if e.TargetID != strconv.FormatInt(tool.ID, 10) || d["name"] != "tool" || e.ActorName != apitest.AdminUsername {
			t.Errorf("entry %+v", e)
		}
		if en, ok := d["enabled"].(bool); ok {
			got[en] = true
		}
	}
	if !got[true] || !got[false] {
		t.Errorf("want one entry enabling and one disabling: %+v", audit.Items)
	}

	// What agents are told.
	adm.Put(apitest.Path("/plugins/%d", tool.ID), body("tool", &yes)).Want(t, 200)
	up, err := env.App.Catalog.PluginsUpdate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range up.Plugins {
		if want := p.Name == "tool"; p.DockerSocket != want {
			t.Errorf("plugins update: %s docker_socket=%v, want %v", p.Name, p.DockerSocket, want)
		}
	}
}
