package browsertest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/config"
)

// editDialog clicks a button that opens an edit form in a dialog and
// returns the form's selector.
func (b *browser) editDialog(button, formID string) string {
	b.t.Helper()
	b.click(button)
	f := "dialog[open] #" + formID
	b.waitFor(formID, fmt.Sprintf(`!!document.querySelector(%q)`, f), 10*time.Second)
	return f
}

// submitDialog submits the form of the open dialog and waits for it to close.
func (b *browser) submitDialog(f string) {
	b.t.Helper()
	b.click(f + ` button[type="submit"]`)
	b.waitFor("dialog closed", `!document.querySelector('dialog[open]')`, 20*time.Second)
}

// TestEditFormsKeepWhatTheAPISet: a project whose node selector (labels
// and expressions) was set through the API is shown and saved from its
// edit dialog with a new expression; a new project gets "tier=qa" from
// the form (which used to answer a raw decoding error); editing an
// environment keeps its host template and its page shows the service URL
// pattern with scheme and ingress port; a node's address, thumbprint and
// labels are edited and its labels shown in the list.
func TestEditFormsKeepWhatTheAPISet(t *testing.T) {
	env := apitest.New(t, func(c *config.Config) { c.Ingress.LinkPort = 8000 })
	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)

	// 1. Node selector set through the API.
	sel := map[string]any{
		"match_labels": map[string]string{"tier": "qa"},
		"expressions": []map[string]any{
			{"key": "zone", "operator": "In", "values": []string{"a", "b"}},
			{"key": "gpu", "operator": "Exists"},
		},
	}
	var project restapi.Project
	var projectBefore map[string]any
	res0 := env.Admin.Post(apitest.Path("/projects"), map[string]any{"name": "shop", "node_selector": sel, "cpu": 2.5, "memory_mb": 700, "ttl": "30h"}).Want(t, 201)
	res0.Decode(t, &project)
	res0.Decode(t, &projectBefore)
	b.open(fmt.Sprintf("/admin/projects/%d", project.ID))
	b.waitText("#project-selector", "tier=qa, zone In (a, b), gpu Exists")
	f := b.editDialog("#edit-project", "project-form")
	if n := b.count(f + " .sel-label"); n != 1 {
		t.Errorf("selector editor shows %d label lines, want 1", n)
	}
	if n := b.count(f + " .sel-expr"); n != 2 {
		t.Errorf("selector editor shows %d expressions, want 2", n)
	}
	b.click(f + ` [data-sel-add="expression"]`)
	last := f + " .sel-expr:last-child"
	b.fill(last+` [data-sel="expr-key"]`, "cores")
	b.selectOption(last+` [data-sel="expr-op"]`, "is greater than")
	b.fill(last+` [data-sel="expr-values"]`, "4")
	b.fill(f+` [name="description"]`, "the shop")
	b.shot("01-project-selector")
	b.submitDialog(f)
	b.waitText("#toasts", "Project saved")
	var got restapi.Project
	env.Admin.Get(apitest.Path("/projects/%d", project.ID)).Want(t, 200).Decode(t, &got)
	want := `{"match_labels":{"tier":"qa"},"expressions":[{"key":"zone","operator":"In","values":["a","b"]},{"key":"gpu","operator":"Exists"},{"key":"cores","operator":"Gt","values":["4"]}]}`
	if !sameJSON(t, got.NodeSelector, want) || got.Description != "the shop" {
		t.Errorf("saved project: description %q, selector %s; want %s", got.Description, got.NodeSelector, want)
	}
	var projectAfter map[string]any
	env.Admin.Get(apitest.Path("/projects/%d", project.ID)).Want(t, 200).Decode(t, &projectAfter)
	for k, v := range projectBefore {
		if k != "description" && k != "node_selector" && k != "updated_at" && !reflect.DeepEqual(projectAfter[k], v) {
			t.Errorf("editing the project changed its %s from %v to %v", k, v, projectAfter[k])
		}
	}

	// A new project with tier=qa typed into the form.
	b.createInDialog("/admin/projects", "project", func(f string) {
		b.fill(f+` [name="name"]`, "shop2")
		b.click(f + ` [data-sel-add="label"]`)
		b.fill(f+` .sel-label [data-sel="label-key"]`, "tier")
		b.fill(f+` .sel-label [data-sel="label-value"]`, "qa")
	})
	var list restapi.List[restapi.Project]
	env.Admin.Get(apitest.Path("/projects")).Want(t, 200).Decode(t, &list)
	for _, p := range list.Items {
		if p.Name == "shop2" && !sameJSON(t, p.NodeSelector, `{"match_labels":{"tier":"qa"}}`) {
			t.Errorf("shop2 selector %s", p.NodeSelector)
		}
	}

	// 2. Environment with a host template: the page shows the real
	// pattern; editing another field keeps the template.
	var e restapi.Environment
	var envBefore map[string]any
	res := env.Admin.Post(apitest.Path("/environments"), map[string]any{"name": "qa", "base_domain": "example.test",
		"host_template": "<service>--<deployment>.<environment>.<base-domain>", "traffic_is_activity": false,
		"default_ttl": "36h", "cpu_overcommit": 3}).Want(t, 201)
	res.Decode(t, &e)
	res.Decode(t, &envBefore)
	b.open(fmt.Sprintf("/admin/environments/%d", e.ID))
	b.waitText("#env-url-pattern", "http://<service>--<deployment>.qa.example.test:8000")
	f = b.editDialog("#edit-environment", "environment-form")
	if v := eval[string](b, fmt.Sprintf(`document.querySelector(%q).value`, f+` [name="host_template"]`)); v != "<service>--<deployment>.<environment>.<base-domain>" {
		t.Errorf("host template field shows %q", v)
	}
	b.fill(f+` [name="description"]`, "for QA")
	b.shot("02-environment-edit")
	b.submitDialog(f)
	b.waitText("#toasts", "Environment saved")
	var after struct {
		HostTemplate      string `json:"host_template"`
		Description       string `json:"description"`
		TrafficIsActivity bool   `json:"traffic_is_activity"`
	}
	env.Admin.Get(apitest.Path("/environments/%d", e.ID)).Want(t, 200).Decode(t, &after)
	if after.HostTemplate != "<service>--<deployment>.<environment>.<base-domain>" || after.Description != "for QA" || after.TrafficIsActivity {
		t.Errorf("environment after edit: %+v", after)
	}
	// Every other field is as the API set it.
	var envAfter map[string]any
	env.Admin.Get(apitest.Path("/environments/%d", e.ID)).Want(t, 200).Decode(t, &envAfter)
	for k, v := range envBefore {
		if k != "description" && k != "updated_at" && !reflect.DeepEqual(envAfter[k], v) {
			t.Errorf("editing the description changed the environment's %s from %v to %v", k, v, envAfter[k])
		}
	}

	// 3. Node edit: host, port, thumbprint and labels; labels in the list.
	var created restapi.NodeCreated
	env.Admin.Post(apitest.Path("/environments/%d/nodes", e.ID), map[string]any{"name": "n1", "host": "127.0.0.1", "port": 1,
		"labels": map[string]string{"tier": "qa"}}).Want(t, 201).Decode(t, &created)
	b.open(fmt.Sprintf("/admin/environments/%d", e.ID))
	b.waitText(`tr[data-name="n1"]`, "tier=qa")
	f = b.editDialog(`[data-node-edit="n1"]`, "node-edit-form")
	b.fill(f+` [name="host"]`, "10.0.0.9")
	b.fill(f+` [name="port"]`, "7443")
	thumb := strings.Repeat("ab", 32)
	b.fill(f+` [name="expected_thumbprint"]`, thumb)
	if label := b.textOf(f + ` [data-kv-add]`); label != "+ Add label" {
		t.Errorf("labels editor button says %q, want + Add label", label)
	}
	b.click(f + ` [data-kv-add]`)
	b.fill(f+` .kv-row:last-child .kv-key`, "zone")
	b.fill(f+` .kv-row:last-child .kv-value`, "a")
	b.shot("03-node-edit")
	b.submitDialog(f)
	b.waitText("#toasts", "Node n1 saved")
	b.waitText(`tr[data-name="n1"]`, "zone=a")
	var node restapi.Node
	env.Admin.Get(apitest.Path("/nodes/%d", created.Node.ID)).Want(t, 200).Decode(t, &node)
	if node.Host != "10.0.0.9" || node.Port != 7443 || node.ExpectedThumbprint != thumb || !reflect.DeepEqual(node.Labels, map[string]string{"tier": "qa", "zone": "a"}) {
		t.Errorf("node after edit: %+v", node)
	}
}

func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Errorf("decode %s: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("decode %s: %v", want, err)
	}
	return reflect.DeepEqual(a, b)
}

// TestDialogsToastsAndTheDefaultRegistry: the default registry's Delete
// button is disabled and says why; an error toast stays until closed
// (while a confirmation next to it fades); the one-time token dialog asks
// before Escape or × close it.
func TestDialogsToastsAndTheDefaultRegistry(t *testing.T) {
	env := startServer(t)
	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)

	b.open("/admin/registries")
	b.waitFor("docker-hub row", `!!document.querySelector('tr[data-name="docker-hub"]')`, 20*time.Second)
	if !eval[bool](b, `document.querySelector('tr[data-name="docker-hub"] button[aria-label="Delete docker-hub"]').disabled`) {
		t.Errorf("the default registry's Delete button is enabled")
	}
	b.waitText(`tr[data-name="docker-hub"] .delete-blocked`, "default registry")
	b.shot("01-default-registry")

	// An error toast (deleting a project in use) stays; an OK toast fades.
	pid, eid := env.Project("busy"), env.Environment("qa")
	newRows(t, env, pid, eid).deployment("d1", "running", "")
	b.open("/admin/projects")
	b.click(`tr[data-name="busy"] button[aria-label="Delete busy"]`)
	b.click(`dialog[open] button[value="ok"]`)
	b.waitFor("error toast", `!!document.querySelector('#toasts .toast.error')`, 20*time.Second)
	// Stay on the page (opening it again would reload it): create another
	// project for a confirmation toast.
	b.click("#new-project")
	b.fill(`dialog[open] #project-form [name="name"]`, "other")
	b.submitDialog(`dialog[open] #project-form`)
	b.waitText("#toasts", "project created")
	b.waitFor("the OK toast fades", `!document.querySelector('#toasts .toast.ok')`, 30*time.Second)
	if b.count("#toasts .toast.error") != 1 {
		t.Fatalf("the error toast went away by itself")
	}
	b.shot("02-error-toast")
	b.click("#toasts .toast.error .toast-close")
	b.waitFor("error toast closed", `!document.querySelector('#toasts .toast.error')`, 5*time.Second)

	// The node token dialog: Escape and × ask first.
	var e restapi.Environment
	env.Admin.Post(apitest.Path("/environments"), map[string]any{"name": "stage", "base_domain": "example.test"}).Want(t, 201).Decode(t, &e)
	b.open(fmt.Sprintf("/admin/environments/%d", e.ID))
	b.click("#new-node")
	b.fill(`dialog[open] #node-form [name="name"]`, "n1")
	b.fill(`dialog[open] #node-form [name="host"]`, "127.0.0.1")
	b.click(`dialog[open] #node-form button[type="submit"]`)
	b.waitFor("token dialog", `!!document.querySelector('dialog[open] #agent-token')`, 20*time.Second)
	b.do("press Escape", keyPress("Escape"))
	b.waitText("dialog[open]:last-of-type", "Did you copy it?")
	b.click(`dialog[open] button[value="cancel"]`)
	b.waitFor("question gone", `document.querySelectorAll('dialog[open]').length === 1`, 5*time.Second)
	if b.count("dialog[open] #agent-token") != 1 {
		t.Fatalf("the token dialog closed on Escape")
	}
	b.click(`dialog[open] .dialog-head button[aria-label="Close"]`)
	b.waitText("dialog[open]:last-of-type", "Did you copy it?")
	b.shot("03-token-dialog-asks")
	b.click(`dialog[open] button[value="ok"]`)
	b.waitFor("token dialog closed", `!document.querySelector('dialog[open]')`, 5*time.Second)

	// The same for an API token on the account page.
	b.open("/account")
	b.fill(`#token-form [name="name"]`, "ci")
	b.click(`#token-form button[type="submit"]`)
	b.waitFor("api token dialog", `!!document.querySelector('dialog[open] #new-token')`, 20*time.Second)
	b.do("press Escape", keyPress("Escape"))
	b.waitText("dialog[open]:last-of-type", "Did you copy it?")
	b.click(`dialog[open] button[value="cancel"]`)
	b.waitFor("question gone", `document.querySelectorAll('dialog[open]').length === 1`, 5*time.Second)
	if b.count("dialog[open] #new-token") != 1 {
		t.Fatalf("the API token dialog closed on Escape")
	}
}

// TestPhoneMenu: at 390×844 the open menu lists every page in one column of
// full-width touch targets with the account and Log out, nothing wider
// than the screen.
func TestPhoneMenu(t *testing.T) {
	env := startServer(t)
	b := newBrowser(t, env.URL)
	// Headless windows are at least 500 px wide: emulate the phone's screen.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3)))
	b.login(adminUser, adminPassword)
	b.open("/deployments")
	b.click("#menu-toggle")
	b.waitFor("menu open", `document.querySelector('#menu-toggle').getAttribute('aria-expanded') === 'true'`, 5*time.Second)
	b.shot("01-phone-menu-open")
	type box struct{ Left, Right, Top, Height, Width float64 }
	links := eval[[]box](b, `[...document.querySelectorAll('#nav a')].map((a) => { const r = a.getBoundingClientRect(); return {Left: r.left, Right: r.right, Top: r.top, Height: r.height, Width: r.width}; })`)
	// Deployments and the ten admin pages (Projects … Audit log, Nodes included).
	if len(links) != 11 {
		t.Fatalf("menu shows %d links, want 11", len(links))
	}
	vw := eval[float64](b, `document.documentElement.clientWidth`)
	for i, l := range links {
		if l.Height < 40 || l.Left < 0 || l.Right > vw || l.Width < vw*0.8 {
			t.Errorf("menu link %d: %+v; want a full-width touch target at least 40 px high inside %v px", i, l, vw)
		}
		if i > 0 && l.Top <= links[i-1].Top {
			t.Errorf("menu link %d is not below the previous one", i)
		}
	}
	if w := eval[float64](b, `document.documentElement.scrollWidth`); w > vw {
		t.Errorf("page is %v px wide on a %v px screen", w, vw)
	}
	if !eval[bool](b, `(() => { const r = document.querySelector('#logout').getBoundingClientRect(); return r.height >= 40 && r.right <= document.documentElement.clientWidth; })()`) {
		t.Errorf("Log out is not a touch target inside the screen")
	}
	// Following a link closes the menu.
	b.click(`#nav a[href="/admin/projects"]`)
	b.waitText("#page-title", "Projects")
	if eval[string](b, `document.querySelector('#menu-toggle').getAttribute('aria-expanded')`) != "false" {
		t.Errorf("menu stays open after navigating")
	}
}

// TestPipelineEditorGuardsUnsavedWork: with a moved node not yet saved,
// following a menu link or switching versions asks first; "Cancel" keeps
// the work (and the version shown), "Discard changes" leaves.
func TestPipelineEditorGuardsUnsavedWork(t *testing.T) {
	env := startServer(t)
	pid := env.Project("shop")
	r := newRows(t, env, pid, env.Environment("qa")) // version 1
	r.id(`INSERT INTO services (name, registry_id, image, tag_mode, tag, ports)
		VALUES ('web', (SELECT id FROM registries WHERE is_default), 'team/web', 'pinned', 'v1', '[8080]') RETURNING id`)
	r.id(`INSERT INTO pipeline_versions (project_id, version, graph)
		VALUES ($1, 2, '{"nodes":[{"id":"web","kind":"service","service":"web","port":8080,"position":{"x":120,"y":120}}],"edges":[]}') RETURNING id`, pid)

	b := newBrowser(t, env.URL)
	b.login(adminUser, adminPassword)
	path := fmt.Sprintf("/admin/projects/%d/pipeline", pid)
	b.open("/admin/projects") // then in-app, so that Back stays in the app
	b.click(`tr[data-name="shop"] a.button`)
	b.waitFor("web node", `!!document.querySelector('g.node[data-node="web"]')`, 20*time.Second)
	pos := `(() => { const r = document.querySelector('g.node[data-node="web"] .node-box').getBoundingClientRect(); return [Math.round(r.left), Math.round(r.top)]; })()`
	before := eval[[]float64](b, pos)
	wx, wy := b.center(`g.node[data-node="web"] .node-id`)
	b.drag(wx, wy, wx+80, wy+60)
	moved := eval[[]float64](b, pos)
	if moved[0]-before[0] < 40 {
		t.Fatalf("node did not move: %v -> %v", before, moved)
	}

	// A menu link: Cancel stays with the work.
	b.click(`#nav a[href="/admin/projects"]`)
	b.waitText("dialog[open]", "not saved")
	b.shot("01-leave-asks")
	b.click(`dialog[open] button[value="cancel"]`)
	b.waitFor("question closed", `!document.querySelector('dialog[open]')`, 5*time.Second)
	if got := eval[string](b, `location.pathname`); got != path {
		t.Errorf("after Cancel the page is %s", got)
	}
	if got := eval[[]float64](b, pos); got[0] != moved[0] || got[1] != moved[1] {
		t.Errorf("after Cancel the node is at %v, want %v", got, moved)
	}

	// Switching to version 1: Cancel keeps version 2 and the work.
	b.selectOption("#version-select", "Version 1")
	b.waitText("dialog[open]", "not saved")
	b.click(`dialog[open] button[value="cancel"]`)
	b.waitFor("version 2 selected again", `!document.querySelector('dialog[open]') && document.querySelector('#version-select').value === '2'`, 5*time.Second)
	if b.count(".notice") != 0 || eval[[]float64](b, pos)[0] != moved[0] {
		t.Errorf("after Cancel the editor left the unsaved version 2")
	}

	// Back in history: asks too; then Discard leaves.
	eval[bool](b, `(history.back(), true)`)
	b.waitText("dialog[open]", "not saved")
	b.click(`dialog[open] button[value="cancel"]`)
	b.waitFor("address back on the pipeline", fmt.Sprintf(`!document.querySelector('dialog[open]') && location.pathname === %q`, path), 5*time.Second)
	b.click(`#nav a[href="/admin/projects"]`)
	b.waitText("dialog[open]", "not saved")
	b.click(`dialog[open] button[value="ok"]`)
	b.waitText("#page-title", "Projects")
}
