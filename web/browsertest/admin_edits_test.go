package browsertest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/secretbox"
)

// editRow opens the Edit dialog of a row of a crud page and returns the
// form's selector.
func (b *browser) editRow(page, name, formID string) string {
	b.t.Helper()
	b.open(page)
	b.waitFor("row "+name, fmt.Sprintf(`!!document.querySelector('tr[data-name=%q]')`, name), 20*time.Second)
	return b.editDialog(fmt.Sprintf(`tr[data-name=%q] button[aria-label="Edit %s"]`, name, name), formID)
}

// getJSON reads an API object as a map.
func getJSON(t *testing.T, env *apitest.Env, path string) map[string]any {
	t.Helper()
	var m map[string]any
	env.Admin.Get(apitest.Path("%s", path)).Want(t, 200).Decode(t, &m)
	return m
}

// sameExcept fails for each field of before that changed in after, except
// the ones named.
func sameExcept(t *testing.T, what string, before, after map[string]any, changed ...string) {
	t.Helper()
	for k, v := range before {
		if k == "updated_at" || k == "has_password" || strings.Contains(strings.Join(changed, ","), k) {
			continue
		}
		if !reflect.DeepEqual(after[k], v) {
			t.Errorf("editing %s changed its %s from %v to %v", what, k, v, after[k])
		}
	}
}

// TestAdminEditFormsSaveWhatTheyShow: the edit dialog of every catalog
// and access page (registries, services, plugins, teams, users) shows
// what the API holds, saves the field the admin changed and keeps every
// other one; a registry's stored password survives an edit that leaves
// it empty; a secret gets its new value (and the old one is gone); a new
// user password from the edit dialog is the one that logs in.
func TestAdminEditFormsSaveWhatTheyShow(t *testing.T) {
	env := startServer(t)
	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)
	// The services form lists the registry's tags: this registry does not
	// exist, and the preview says so (a 502 the page shows, not a bug).
	b.expectProblem("/tags?")

	// Registry: the username changes, the password stays.
	var reg restapi.Registry
	env.Admin.Post(apitest.Path("/registries"), map[string]any{"name": "mirror", "url": "https://mirror.example.test",
		"username": "bot", "password": "registry-pass-1"}).Want(t, 201).Decode(t, &reg)
	before := getJSON(t, env, fmt.Sprintf("/registries/%d", reg.ID))
	f := b.editRow("/admin/registries", "mirror", "registry-form")
	if v := eval[string](b, fmt.Sprintf(`document.querySelector('%s [name="url"]').value`, f)); v != "https://mirror.example.test" {
		t.Errorf("registry form shows url %q", v)
	}
	b.fill(f+` [name="username"]`, "bot2")
	b.submitDialog(f)
	b.waitText("#toasts", "registry saved")
	b.waitText(`tr[data-name="mirror"]`, "bot2")
	after := getJSON(t, env, fmt.Sprintf("/registries/%d", reg.ID))
	if after["username"] != "bot2" || after["has_password"] != true {
		t.Errorf("registry after edit: %v", after)
	}
	sameExcept(t, "the registry", before, after, "username")

	// Service: the description changes; ports, env, health, pattern stay.
	var svc restapi.Service
	env.Admin.Post(apitest.Path("/services"), map[string]any{"name": "api", "registry_id": reg.ID, "image": "team/api",
		"tag_mode": "selectable", "tag_pattern": "v1.*", "ports": []int{8080, 9090}, "env": map[string]string{"MODE": "qa"},
		"health": map[string]any{"http": "/healthz"}, "description": "old"}).Want(t, 201).Decode(t, &svc)
	before = getJSON(t, env, fmt.Sprintf("/services/%d", svc.ID))
	f = b.editRow("/admin/services", "api", "service-form")
	b.fill(f+` [name="description"]`, "the public API")
	b.submitDialog(f)
	b.waitText("#toasts", "service saved")
	after = getJSON(t, env, fmt.Sprintf("/services/%d", svc.ID))
	if after["description"] != "the public API" {
		t.Errorf("service description %v", after["description"])
	}
	sameExcept(t, "the service", before, after, "description")

	// Plugin: the memory limit changes; schema, timeout, flags stay.
	var plg restapi.Plugin
	schema := map[string]any{"type": "object", "properties": map[string]any{"database": map[string]any{"type": "string"}}, "required": []string{"database"}}
	env.Admin.Post(apitest.Path("/plugins"), map[string]any{"name": "mkdb", "registry_id": reg.ID, "image": "team/mkdb", "tag": "1.0",
		"params_schema": schema, "cpu": 0.25, "memory_mb": 64, "timeout": "2m", "join_network": true}).Want(t, 201).Decode(t, &plg)
	before = getJSON(t, env, fmt.Sprintf("/plugins/%d", plg.ID))
	f = b.editRow("/admin/plugins", "mkdb", "plugin-form")
	b.fill(f+` [name="memory_mb"]`, "96")
	b.submitDialog(f)
	b.waitText("#toasts", "plugin saved")
	after = getJSON(t, env, fmt.Sprintf("/plugins/%d", plg.ID))
	if after["memory_mb"] != float64(96) {
		t.Errorf("plugin memory %v", after["memory_mb"])
	}
	sameExcept(t, "the plugin", before, after, "memory_mb")

	// Secret: a new value replaces the old one.
	var sec restapi.Secret
	env.Admin.Post(apitest.Path("/secrets"), map[string]any{"name": "db_pw", "value": "old-secret-value"}).Want(t, 201).Decode(t, &sec)
	f = b.editRow("/admin/secrets", "db_pw", "secret-form")
	if v := eval[string](b, fmt.Sprintf(`document.querySelector('%s [name="value"]').value`, f)); v != "" {
		t.Errorf("the secret form shows a value: %q", v)
	}
	b.fill(f+` [name="value"]`, "new-secret-value")
	b.submitDialog(f)
	b.waitText("#toasts", "secret saved")
	box, err := secretbox.New(apitest.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	var ct []byte
	var keyID string
	if err := env.Store.Pool.QueryRow(context.Background(), "SELECT value_enc, key_id FROM secrets WHERE id = $1", sec.ID).Scan(&ct, &keyID); err != nil {
		t.Fatal(err)
	}
	if pt, err := box.Open(ct, keyID, fmt.Sprintf("secret:%d", sec.ID)); err != nil || string(pt) != "new-secret-value" {
		t.Errorf("secret value after the edit: %q (%v), want new-secret-value", pt, err)
	}
	if strings.Contains(b.textOf("#main"), "secret-value") {
		t.Errorf("the secrets page shows a value")
	}

	// Team: the description changes, the name stays.
	team := env.Team("testers")
	before = getJSON(t, env, fmt.Sprintf("/teams/%d", team))
	f = b.editRow("/admin/teams", "testers", "team-form")
	b.fill(f+` [name="description"]`, "QA engineers")
	b.submitDialog(f)
	b.waitText("#toasts", "team saved")
	after = getJSON(t, env, fmt.Sprintf("/teams/%d", team))
	if after["description"] != "QA engineers" {
		t.Errorf("team description %v", after["description"])
	}
	sameExcept(t, "the team", before, after, "description")

	// User: display name, role and a new password.
	u := env.UserWithPassword("quinn", "first-password-1", false)
	f = b.editRow("/admin/users", "quinn", "user-form")
	b.fill(f+` [name="display_name"]`, "Quinn QA")
	b.selectOption(f+` [name="role"]`, "Admin")
	b.fill(f+` [name="password"]`, "second-password-2")
	b.submitDialog(f)
	b.waitText("#toasts", "user saved")
	b.waitText(`tr[data-name="quinn"]`, "Quinn QA")
	got := getJSON(t, env, fmt.Sprintf("/users/%d", u.ID))
	if got["display_name"] != "Quinn QA" || got["role"] != "admin" || got["active"] != true {
		t.Errorf("user after edit: %v", got)
	}
	q := newBrowser(t, env.URL)
	q.login("quinn", "second-password-2")
	q.waitFor("admin menu for quinn", `!!document.querySelector('#nav a[href="/admin/users"]')`, 20*time.Second)
}

// confirm answers the open confirmation dialog with its confirm button.
func (b *browser) confirm() {
	b.t.Helper()
	b.waitFor("confirmation dialog", `!!document.querySelector('dialog[open] button[value="ok"]')`, 10*time.Second)
	b.click(`dialog[open] button[value="ok"]`)
	b.waitFor("dialog closed", `!document.querySelector('dialog[open]')`, 10*time.Second)
}

// TestNodeActionsFromTheUI: on an environment's page an admin disables a
// node (it drains) and enables it again, approves the new thumbprint of
// an untrusted node, and revokes a node's token (pending until its agent
// next connects); the API agrees after each step.
func TestNodeActionsFromTheUI(t *testing.T) {
	env := startServer(t)
	eid := env.Environment("qa")
	node := func(name string) int64 {
		var out restapi.NodeCreated
		env.Admin.Post(apitest.Path("/environments/%d/nodes", eid), map[string]any{"name": name, "host": "127.0.0.1", "port": 1}).Want(t, 201).Decode(t, &out)
		return out.Node.ID
	}
	n1, n2 := node("n1"), node("n2")
	seen := strings.Repeat("cd", 32)
	if _, err := env.Store.Pool.Exec(context.Background(), `UPDATE nodes SET status = 'untrusted', expected_thumbprint = $2, seen_thumbprint = $3 WHERE id = $1`,
		n2, strings.Repeat("ab", 32), seen); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)
	b.open(fmt.Sprintf("/admin/environments/%d", eid))

	// Disable, then enable.
	b.click(`button[aria-label="Disable n1"]`)
	b.waitText("#toasts", "n1 disabled")
	b.waitText(`tr[data-name="n1"]`, "draining")
	if got := getJSON(t, env, fmt.Sprintf("/nodes/%d", n1)); got["enabled"] != false {
		t.Errorf("n1 after Disable: enabled %v", got["enabled"])
	}
	b.click(`button[aria-label="Enable n1"]`)
	b.waitText("#toasts", "n1 enabled")
	b.waitFor("n1 no longer draining", `!document.querySelector('tr[data-name="n1"]').textContent.includes('draining')`, 20*time.Second)
	if got := getJSON(t, env, fmt.Sprintf("/nodes/%d", n1)); got["enabled"] != true {
		t.Errorf("n1 after Enable: enabled %v", got["enabled"])
	}

	// Approve the thumbprint the untrusted node presented.
	b.waitText(`tr[data-name="n2"]`, "untrusted")
	b.click(`button[aria-label="Approve thumbprint of n2"]`)
	b.confirm()
	b.waitText("#toasts", "New thumbprint of n2 approved")
	b.waitFor("no more Approve", `!document.querySelector('button[aria-label="Approve thumbprint of n2"]')`, 20*time.Second)
	if got := getJSON(t, env, fmt.Sprintf("/nodes/%d", n2)); got["expected_thumbprint"] != seen {
		t.Errorf("n2 after Approve: expected thumbprint %v, want %s", got["expected_thumbprint"], seen)
	}

	// Revoke: the agent is told when it next connects.
	b.click(`button[aria-label="Revoke token of n1"]`)
	b.confirm()
	b.waitText("#toasts", "Token of n1 revoked")
	b.waitFor("no more Revoke", `!document.querySelector('button[aria-label="Revoke token of n1"]')`, 20*time.Second)
	b.waitText(`tr[data-name="n1"]`, "revoked")
	b.shot("01-node-actions")
	if got := getJSON(t, env, fmt.Sprintf("/nodes/%d", n1)); got["status"] != "revoked" {
		t.Errorf("n1 after Revoke: %v", got)
	}
}

// TestAPITokensPage: a user creates an API token on the account page; the
// one-time dialog shows it, the list shows its prefix, the token works
// against the API; revoked from the page, it no longer does.
func TestAPITokensPage(t *testing.T) {
	env := startServer(t)
	env.UserWithPassword("dev", devPassword, false)
	b := newBrowser(t, env.URL)
	b.login("dev", devPassword)
	b.open("/account")
	b.waitText("#main", "No API tokens.")
	b.fill(`#token-form [name="name"]`, "ci-pipeline")
	b.click(`#token-form button[type="submit"]`)
	b.waitFor("token dialog", `!!document.querySelector('dialog[open] #new-token')`, 20*time.Second)
	token := eval[string](b, `document.querySelector('#new-token').value`)
	b.click(`dialog[open] .token-box button.primary`)
	b.confirm()
	b.waitText("#main table", "ci-pipeline")
	prefix := b.textOf("#main table tbody td:nth-child(2)")
	if prefix == "" || !strings.HasPrefix(token, prefix) {
		t.Errorf("the list shows prefix %q of token %q", prefix, token)
	}
	var me restapi.Me
	env.TokenClient(token).Get(apitest.Path("/me")).Want(t, 200).Decode(t, &me)
	if me.User.Username != "dev" {
		t.Errorf("the token acts as %q", me.User.Username)
	}
	b.shot("01-token-listed")

	b.click(`button[aria-label="Revoke token ci-pipeline"]`)
	b.confirm()
	b.waitText("#toasts", "Token revoked.")
	b.waitFor("no Revoke button", `!document.querySelector('button[aria-label="Revoke token ci-pipeline"]')`, 20*time.Second)
	env.TokenClient(token).Get(apitest.Path("/me")).Want(t, 401)
}

// TestPasswordChangeCanRevokeTokens: the account page's password form says
// that tokens stay and offers to revoke them in the same submit.
func TestPasswordChangeCanRevokeTokens(t *testing.T) {
	env := startServer(t)
	u := env.UserWithPassword("dev", devPassword, false)
	token, _ := env.NewToken(u.ID, "ci", nil)
	b := newBrowser(t, env.URL)
	b.login("dev", devPassword)
	b.open("/account")
	b.waitText("#password-form", "keeps your API tokens unless this is ticked")
	b.fill(`#password-form [name="current_password"]`, devPassword)
	b.fill(`#password-form [name="new_password"]`, "dev-password-after-leak")
	b.click(`#password-form [name="revoke_tokens"]`)
	b.click(`#password-form button[type="submit"]`)
	b.waitText("#toasts", "your API tokens revoked")
	env.TokenClient(token).Get(apitest.Path("/me")).Want(t, 401)
	b.waitText("#main table", "revoked")
}
