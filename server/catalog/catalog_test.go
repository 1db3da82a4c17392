package catalog_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

var (
	keyA = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA1}, 32))
	keyB = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xB2}, 32))
)

const (
	regUser = "deployer"
	regPass = "registry-password-7c1"
	dbPass  = "db-password-value-93f"
	apiKey  = "project-api-key-1d2"
)

func newCatalog(t *testing.T, st *store.Store, current string, old ...string) *catalog.Catalog {
	t.Helper()
	box, err := secretbox.New(current, old...)
	if err != nil {
		t.Fatal(err)
	}
	return catalog.New(st, box, zerolog.Nop())
}

func tx(t *testing.T, st *store.Store, fn func(ctx context.Context, tx *store.Store) error) {
	t.Helper()
	ctx := testutil.Context(t, 30*time.Second)
	if err := st.InTx(ctx, func(tx *store.Store) error { return fn(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

// do runs fn on st outside a transaction (the catalog's writes open their own).
func do(t *testing.T, st *store.Store, fn func(ctx context.Context, st *store.Store) error) {
	t.Helper()
	if err := fn(testutil.Context(t, 30*time.Second), st); err != nil {
		t.Fatal(err)
	}
}

// world is a catalog with a private registry (real docker-registry holding
// demo/web:v1.0.0, v1.1.0, features-login), a project "shop" and its
// pipeline version 1.
type world struct {
	st        *store.Store
	cat       *catalog.Catalog
	reg       *testutil.Registry
	regID     int64
	projectID int64
	pluginID  int64
	version   store.PipelineVersion
}

func newWorld(t *testing.T) *world {
	st := storetest.New(t)
	w := &world{st: st, cat: newCatalog(t, st, keyA)}
	w.reg = testutil.StartRegistry(t, regUser, regPass)
	ref := testutil.ScratchImage(t, "./scripts/images/demo-web", "nullops-test/catalog-web:"+fmt.Sprint(os.Getpid())+"-"+strings.ToLower(t.Name()))
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", ref) })
	w.reg.Push(t, ref, "demo/web", "v1.0.0", "v1.1.0", "features-login")

	pw := regPass
	do(t, st, func(ctx context.Context, tx *store.Store) error {
		r, err := w.cat.CreateRegistry(ctx, store.SystemActor, catalog.RegistryInput{
			RegistryInput: store.RegistryInput{Name: "private", URL: "http://" + w.reg.Host, Username: regUser}, Password: &pw})
		if err != nil {
			return err
		}
		w.regID = r.ID
		if _, err := store.CreateService(ctx, tx, store.ServiceInput{Name: "web", RegistryID: r.ID, Image: "demo/web",
			TagMode: store.TagModeSelectable, TagPattern: "v*", Ports: []int{8080}, Env: map[string]string{"MODE": "qa"},
			Health: &protocol.Health{HTTP: "/healthz"}}); err != nil {
			return err
		}
		if _, err := store.CreateService(ctx, tx, store.ServiceInput{Name: "postgres", RegistryID: 1, Image: "postgres",
			TagMode: store.TagModePinned, Tag: "16", Ports: []int{5432}}); err != nil {
			return err
		}
		pl, err := store.CreatePlugin(ctx, tx, store.PluginInput{Name: "create-db", RegistryID: r.ID, Image: "plugins/create-db", Tag: "v1",
			ParamsSchema: []byte(`{"type":"object","required":["host"],"properties":{"host":{"type":"string"}}}`),
			CPU:          0.25, MemoryMB: 64, TimeoutSeconds: 120, JoinNetwork: true})
		if err != nil {
			return err
		}
		w.pluginID = pl.ID
		p, err := store.CreateProject(ctx, tx, store.ProjectInput{Name: "shop", CPU: 2, MemoryMB: 1024})
		if err != nil {
			return err
		}
		w.projectID = p.ID
		if _, err := w.cat.CreateSecret(ctx, store.SystemActor, "db_password", nil, dbPass); err != nil {
			return err
		}
		if _, err := w.cat.CreateSecret(ctx, store.SystemActor, "api_key", nil, "global-api-key"); err != nil {
			return err
		}
		if _, err := w.cat.CreateSecret(ctx, store.SystemActor, "api_key", &p.ID, apiKey); err != nil {
			return err
		}
		if _, err := w.cat.CreateSecret(ctx, store.SystemActor, "unused", nil, "never-sent"); err != nil {
			return err
		}
		return nil
	})
	graph := `{"resources":{"cpu":1.5},"nodes":[
		{"id":"db","kind":"service","service":"postgres","env":{"POSTGRES_PASSWORD":"${secrets.db_password}"}},
		{"id":"mkdb","kind":"component","plugin":"create-db","params":{"host":"db"}},
		{"id":"api","kind":"service","service":"web","port":8080,"ingress":true,"env":{"DB":"${steps.mkdb.outputs.url}","KEY":"${secrets.api_key}"}}],
	  "edges":[["db","mkdb"],["mkdb","api"]]}`
	do(t, st, func(ctx context.Context, _ *store.Store) error {
		v, order, err := w.cat.SavePipeline(ctx, store.SystemActor, w.projectID, []byte(graph))
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(order, []string{"db", "mkdb", "api"}) {
			t.Errorf("order %v", order)
		}
		w.version = v
		return nil
	})
	return w
}

func TestResolveAndCheckTags(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 60*time.Second)
	host := w.reg.Host

	if want := map[string]string{"create-db": host + "/plugins/create-db:v1"}; !reflect.DeepEqual(w.version.PluginPins, want) {
		t.Fatalf("plugin pins %v, want %v", w.version.PluginPins, want)
	}

	// CheckTags: pinned filled in; selectable must exist and match.
	tags, err := w.cat.CheckTags(ctx, w.projectID, w.version.ID, map[string]string{"web": "v1.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"web": "v1.1.0", "postgres": "16"}; !reflect.DeepEqual(tags, want) {
		t.Fatalf("tags %v, want %v", tags, want)
	}
	for _, tc := range []struct {
		tags     map[string]string
		contains string
	}{
		{map[string]string{}, "choose a tag"},
		{map[string]string{"web": "v9.9.9"}, "does not exist"},
		{map[string]string{"web": "features-login"}, "does not match"},
		{map[string]string{"web": "v1.0.0", "postgres": "15"}, "pinned"},
		{map[string]string{"web": "v1.0.0", "redis": "7"}, "no service"},
	} {
		_, err := w.cat.CheckTags(ctx, w.projectID, w.version.ID, tc.tags)
		if errs.FieldsOf(err) == nil || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("tags %v: error %v, want field problems containing %q", tc.tags, err, tc.contains)
		}
	}

	spec, err := w.cat.Resolve(ctx, w.projectID, w.version.ID, tags)
	if err != nil {
		t.Fatal(err)
	}
	api := spec.Services["api"]
	if api.Image != host+"/demo/web:v1.1.0" || api.Auth == nil || api.Auth.Username != regUser || api.Auth.Password != regPass || api.Auth.ServerAddress != host {
		t.Errorf("api service %+v auth %+v", api, api.Auth)
	}
	if api.Env["MODE"] != "qa" || api.Health == nil || api.Health.HTTP != "/healthz" || !reflect.DeepEqual(api.Ports, []int{8080}) {
		t.Errorf("api defaults %+v", api)
	}
	if db := spec.Services["db"]; db.Image != "docker.io/library/postgres:16" || db.Auth != nil {
		t.Errorf("db service %+v", db)
	}
	mk := spec.Plugins["mkdb"]
	if mk.Image != host+"/plugins/create-db:v1" || mk.Auth == nil || mk.Auth.Password != regPass || mk.Timeout != "2m0s" ||
		mk.Resources != (protocol.Resources{CPU: 0.25, MemoryMB: 64}) || !mk.JoinNetwork || mk.Name != "create-db" {
		t.Errorf("plugin %+v", mk)
	}
	if want := map[string]string{"db_password": dbPass, "api_key": apiKey}; !reflect.DeepEqual(spec.Secrets, want) {
		t.Errorf("secrets %v, want %v (only referenced ones, project overriding global)", spec.Secrets, want)
	}
	if spec.Resources != (protocol.Resources{CPU: 1.5, MemoryMB: 1024}) || spec.Project != "shop" || spec.PipelineVersion != 1 {
		t.Errorf("spec header %+v %s %d", spec.Resources, spec.Project, spec.PipelineVersion)
	}
	spec.DeploymentID, spec.Name = 1, "pr-1"
	if err := spec.Validate(); err != nil {
		t.Errorf("resolved spec does not satisfy the wire contract: %v", err)
	}

	// The definition a deployment records holds no secret value and no
	// registry credential; Complete adds both.
	def, err := w.cat.Define(ctx, w.projectID, w.version.ID, tags)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{dbPass, apiKey, regPass} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("definition holds secret value %q: %s", secret, raw)
		}
	}
	if def.Registries["api"] == 0 || def.Registries["mkdb"] == 0 || def.Spec.Plugins["mkdb"].Timeout != "2m0s" {
		t.Errorf("definition %s", raw)
	}
	completed, err := w.cat.Complete(ctx, w.projectID, def)
	if err != nil {
		t.Fatal(err)
	}
	completed.DeploymentID, completed.Name = 1, "pr-1"
	if !reflect.DeepEqual(completed, spec) {
		t.Errorf("Complete(Define) differs from Resolve:\n%+v\n%+v", completed, spec)
	}

	// A later plugin change does not alter the saved version's pinned image.
	tx(t, w.st, func(ctx context.Context, tx *store.Store) error {
		p, err := store.GetPlugin(ctx, tx, w.pluginID)
		if err != nil {
			return err
		}
		_, err = store.UpdatePlugin(ctx, tx, p.ID, store.PluginInput{Name: p.Name, RegistryID: p.RegistryID, Image: p.Image, Tag: "v2",
			ParamsSchema: p.ParamsSchema, CPU: p.CPU, MemoryMB: p.MemoryMB, TimeoutSeconds: p.TimeoutSeconds, JoinNetwork: p.JoinNetwork})
		return err
	})
	spec, err = w.cat.Resolve(ctx, w.projectID, w.version.ID, tags)
	if err != nil {
		t.Fatal(err)
	}
	if img := spec.Plugins["mkdb"].Image; img != host+"/plugins/create-db:v1" {
		t.Errorf("pinned plugin image changed to %s", img)
	}
	u, err := w.cat.PluginsUpdate(ctx)
	if err != nil || len(u.Plugins) != 1 || u.Plugins[0].Image != host+"/plugins/create-db:v2" {
		t.Errorf("plugins.update %+v %v", u, err)
	}

	// Another project's version is not resolvable through this project.
	if _, err := w.cat.Resolve(ctx, w.projectID+1000, w.version.ID, tags); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("foreign project: %v", err)
	}

	// What the catalog no longer has is the caller's 409 unresolvable, said
	// by the catalog itself (no caller picks a kind): a secret deleted
	// after the deployment was defined...
	if _, err := w.st.Pool.Exec(ctx, `DELETE FROM secrets WHERE name = 'db_password'`); err != nil {
		t.Fatal(err)
	}
	_, err = w.cat.Complete(ctx, w.projectID, def)
	if e, ok := errs.As(err); !ok || e.Kind != errs.Conflict || e.Code != "unresolvable" || !errors.Is(err, store.ErrNotFound) ||
		!strings.Contains(e.Message, "db_password") {
		t.Errorf("vanished secret: %#v", err)
	}
	// ...and a version of another project.
	if _, err := w.cat.Define(ctx, w.projectID+1000, w.version.ID, tags); errs.KindOf(err) != errs.Conflict {
		t.Errorf("foreign project: %v is not a conflict", err)
	}
}

func TestRotateKeyKeepsEveryValueReadable(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 60*time.Second)
	// A node token sealed the way the agent connection manager does.
	var nodeID int64
	nodeToken := "node-token-value-55a"
	tx(t, w.st, func(ctx context.Context, tx *store.Store) error {
		e, err := store.CreateEnvironment(ctx, tx, store.EnvironmentInput{Name: "qa", BaseDomain: "qa.test", DefaultTTLSeconds: 3600})
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO nodes (environment_id, name, host, port) VALUES ($1, 'n1', '127.0.0.1', 7443) RETURNING id`, e.ID).Scan(&nodeID); err != nil {
			return err
		}
		enc, kid, err := w.cat.Box.Seal([]byte(nodeToken), agents.TokenAAD(nodeID))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE nodes SET token_enc = $2, token_key_id = $3 WHERE id = $1`, nodeID, enc, kid)
		return err
	})

	// Without the old key, rotation refuses and changes nothing.
	if _, err := catalog.RotateKeys(ctx, w.st, mustBox(t, keyB)); err == nil || !strings.Contains(err.Error(), "oldkeys") {
		t.Fatalf("rotation without the old key: %v", err)
	}
	rep, err := catalog.RotateKeys(ctx, w.st, mustBox(t, keyB, keyA))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{store.SealedSecretValue: 4, store.SealedRegistryPassword: 1, store.SealedNodeToken: 1}
	if !reflect.DeepEqual(rep.Reencrypted, want) || rep.Current != 0 {
		t.Fatalf("report %+v, want %v", rep, want)
	}
	// Idempotent: a second run has nothing to do.
	if rep, err := catalog.RotateKeys(ctx, w.st, mustBox(t, keyB, keyA)); err != nil || rep.Current != 6 || len(rep.Reencrypted) != 0 {
		t.Fatalf("second rotation %+v %v", rep, err)
	}

	// Only the new key is needed now.
	newOnly := newCatalog(t, w.st, keyB)
	var stale int
	if err := w.st.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM secrets WHERE key_id <> $1) + (SELECT count(*) FROM registries WHERE password_enc IS NOT NULL AND key_id <> $1)
		+ (SELECT count(*) FROM nodes WHERE token_key_id <> $1)`, newOnly.Box.CurrentKeyID()).Scan(&stale); err != nil || stale != 0 {
		t.Fatalf("%d values not under the new key (%v)", stale, err)
	}
	vals, err := newOnly.OpenSecrets(ctx, w.st.Pool, w.projectID, []string{"db_password", "api_key", "unused"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"db_password": dbPass, "api_key": apiKey, "unused": "never-sent"}; !reflect.DeepEqual(vals, want) {
		t.Fatalf("secrets after rotation %v", vals)
	}
	global, err := newOnly.OpenSecrets(ctx, w.st.Pool, 0, []string{"api_key"})
	if err != nil || global["api_key"] != "global-api-key" {
		t.Fatalf("global secret after rotation %v %v", global, err)
	}
	ep, _, err := newOnly.Endpoint(ctx, w.st.Pool, w.regID)
	if err != nil || ep.Password != regPass {
		t.Fatalf("registry password after rotation: %v", err)
	}
	var enc []byte
	var kid string
	if err := w.st.Pool.QueryRow(ctx, `SELECT token_enc, token_key_id FROM nodes WHERE id = $1`, nodeID).Scan(&enc, &kid); err != nil {
		t.Fatal(err)
	}
	if pt, err := newOnly.Box.Open(enc, kid, agents.TokenAAD(nodeID)); err != nil || string(pt) != nodeToken {
		t.Fatalf("node token after rotation: %q %v", pt, err)
	}
	if err := newOnly.TestRegistry(ctx, w.regID); err != nil {
		t.Fatalf("registry credentials after rotation: %v", err)
	}
}

func mustBox(t *testing.T, current string, old ...string) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(current, old...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlaintextNeverInDatabase(t *testing.T) {
	w := newWorld(t)
	ctx := testutil.Context(t, 30*time.Second)
	// Every column of every catalog table, as text, and the raw encrypted bytes.
	var dump string
	err := w.st.Pool.QueryRow(ctx, `SELECT concat_ws(E'\n',
		(SELECT string_agg(t::text, E'\n') FROM secrets t),
		(SELECT string_agg(t::text, E'\n') FROM registries t),
		(SELECT string_agg(t::text, E'\n') FROM pipeline_versions t),
		(SELECT string_agg(encode(value_enc, 'escape'), E'\n') FROM secrets),
		(SELECT string_agg(encode(password_enc, 'escape'), E'\n') FROM registries WHERE password_enc IS NOT NULL))`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{regPass, dbPass, apiKey, "global-api-key", "never-sent"} {
		if strings.Contains(dump, plain) {
			t.Errorf("plaintext %q found in the database", plain)
		}
	}
	if !strings.Contains(dump, "${secrets.db_password}") {
		t.Error("dump does not cover pipeline graphs")
	}
}
