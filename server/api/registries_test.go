package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/app"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// logBuffer collects every log line of a server (debug level).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// loggedEnv is apitest.New with every log line (debug level) captured.
func loggedEnv(t *testing.T) (*apitest.Env, *logBuffer) {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t)
	cfg.Database.MaxConns = 10
	cfg.Secret.Key = apitest.SecretKey
	cfg.Admin = config.Admin{Username: apitest.AdminUsername, Password: apitest.AdminPassword}
	cfg.Ingress.Token = apitest.IngressToken
	logs := &logBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, zerolog.New(logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	srv := httptest.NewServer(a.Echo)
	t.Cleanup(func() {
		srv.Close()
		a.Store.Close()
	})
	env := &apitest.Env{T: t, App: a, Store: a.Store, Server: srv, URL: srv.URL}
	env.Admin = env.Login(apitest.AdminUsername, apitest.AdminPassword)
	return env, logs
}

type idBody struct {
	ID int64 `json:"id"`
}

// TestRegistryAPIAgainstRealRegistry: add a private registry, test the
// connection, list tags by pattern (registry and service endpoints), and
// get clear errors for refused credentials and a registry that is down.
// The password never shows in responses, logs or the database.
func TestRegistryAPIAgainstRealRegistry(t *testing.T) {
	const user, pass = "ci", "registry-pass-e41b"
	reg := testutil.StartRegistry(t, user, pass)
	ref := testutil.ScratchImage(t, "./scripts/images/demo-web", fmt.Sprintf("nullops-test/api-registry:%d", os.Getpid()))
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", ref) })
	reg.Push(t, ref, "demo/web", "v1.0.0", "v1.1.0", "features-login", "main")

	env, logs := loggedEnv(t)
	var all []*apitest.Response
	var mu sync.Mutex
	env.Observe(func(_ *http.Request, r *apitest.Response) { mu.Lock(); all = append(all, r); mu.Unlock() })
	adm := env.Admin

	// Docker Hub is there by default.
	var regs restapi.List[restapi.Registry]
	adm.Get(apitest.Path("/registries")).Want(t, 200).Decode(t, &regs)
	if len(regs.Items) != 1 || regs.Items[0].Name != "docker-hub" || !regs.Items[0].IsDefault {
		t.Fatalf("default registries %+v", regs.Items)
	}
	if r := adm.Delete(apitest.Path("/registries/%d", regs.Items[0].ID)); r.Status != 409 || r.ErrorCode() != "in_use" {
		t.Fatalf("deleting the default registry: %d %s", r.Status, r.Body)
	}

	var created restapi.Registry
	adm.Post(apitest.Path("/registries"), map[string]any{"name": "private", "url": "http://" + reg.Host, "username": user, "password": pass}).
		Want(t, 201).Decode(t, &created)
	if !created.HasPassword || created.Username != user {
		t.Fatalf("created %+v", created)
	}
	adm.Post(apitest.Path("/registries/%d/test", created.ID), nil).Want(t, 200)

	var l restapi.Tags
	for pattern, want := range map[string][]string{
		"v*": {"v1.1.0", "v1.0.0"}, "features-*": {"features-login"}, "1.2.*": {}, "main": {"main"},
	} {
		adm.Get(apitest.Path("/registries/%d/tags?image=demo/web&pattern=%s", created.ID, pattern)).Want(t, 200).Decode(t, &l)
		if !reflect.DeepEqual(l.Tags, want) {
			t.Errorf("pattern %s: %v, want %v", pattern, l.Tags, want)
		}
	}
	if r := adm.Get(apitest.Path("/registries/%d/tags?image=demo/nothing", created.ID)); r.Status != 404 || r.ErrorCode() != "image_not_found" {
		t.Errorf("unknown repository: %d %s", r.Status, r.Body)
	}
	if r := adm.Get(apitest.Path("/registries/%d/tags?image=demo/web&pattern=[", created.ID)); r.Status != 400 {
		t.Errorf("bad pattern: %d %s", r.Status, r.Body)
	}

	// A selectable service: every user lists its tags for the deploy form.
	var svc idBody
	adm.Post(apitest.Path("/services"), map[string]any{"name": "web", "registry_id": created.ID, "image": "demo/web",
		"tag_mode": "selectable", "tag_pattern": "v*", "ports": []int{8080}, "health": map[string]any{"http": "/"}}).Want(t, 201).Decode(t, &svc)
	userC := env.Login(mkUser(t, env, "dev"), apitest.DefaultPassword)
	userC.Get(apitest.Path("/services/%d/tags", svc.ID)).Want(t, 200).Decode(t, &l)
	if !reflect.DeepEqual(l.Tags, []string{"v1.1.0", "v1.0.0"}) || l.Order != "semver" {
		t.Errorf("service tags %v (%s)", l.Tags, l.Order)
	}
	if r := userC.Get(apitest.Path("/registries/%d/tags?image=demo/web", created.ID)); r.Status != 403 {
		t.Errorf("user listing registry tags: %d", r.Status)
	}

	// Deleting the registry a service uses is refused, naming the service.
	r := adm.Delete(apitest.Path("/registries/%d", created.ID))
	if r.Status != 409 || !strings.Contains(string(r.Body), `service \"web\"`) {
		t.Errorf("delete used registry: %d %s", r.Status, r.Body)
	}

	// Wrong credentials: clear error on test and on listing.
	adm.Put(apitest.Path("/registries/%d", created.ID), map[string]any{"name": "private", "url": "http://" + reg.Host,
		"username": user, "password": "not-the-password-1"}).Want(t, 200)
	r = adm.Post(apitest.Path("/registries/%d/test", created.ID), nil)
	if r.Status != 502 || r.ErrorCode() != "registry_unauthorized" || !strings.Contains(string(r.Body), "refused the credentials") {
		t.Errorf("test with wrong password: %d %s", r.Status, r.Body)
	}
	r = userC.Get(apitest.Path("/services/%d/tags", svc.ID))
	if r.Status != 502 || r.ErrorCode() != "registry_unauthorized" {
		t.Errorf("tags with wrong password: %d %s", r.Status, r.Body)
	}
	// PUT without password keeps it; restore the right one first.
	adm.Put(apitest.Path("/registries/%d", created.ID), map[string]any{"name": "private", "url": "http://" + reg.Host, "username": user, "password": pass}).Want(t, 200)
	adm.Put(apitest.Path("/registries/%d", created.ID), map[string]any{"name": "private", "url": "http://" + reg.Host, "username": user}).Want(t, 200)
	adm.Post(apitest.Path("/registries/%d/test", created.ID), nil).Want(t, 200)

	// Registry down: clear error, server fine.
	down := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	adm.Put(apitest.Path("/registries/%d", created.ID), map[string]any{"name": "private", "url": down, "username": user}).Want(t, 200)
	r = adm.Post(apitest.Path("/registries/%d/test", created.ID), nil)
	if r.Status != 502 || r.ErrorCode() != "registry_unreachable" {
		t.Errorf("test of a down registry: %d %s", r.Status, r.Body)
	}
	r = userC.Get(apitest.Path("/services/%d/tags", svc.ID))
	if r.Status != 502 || r.ErrorCode() != "registry_unreachable" || !strings.Contains(string(r.Body), "unreachable") {
		t.Errorf("tags of a down registry: %d %s", r.Status, r.Body)
	}
	adm.Get(apitest.Path("/registries")).Want(t, 200)

	// Audit: every write recorded, without the password.
	var audit restapi.List[restapi.AuditEntry]
	adm.Get(apitest.Path("/audit?action=registry.*")).Want(t, 200).Decode(t, &audit)
	if len(audit.Items) != 5 { // create + 4 updates
		t.Errorf("%d registry audit entries, want 5", len(audit.Items))
	}

	// The password is nowhere: responses, logs, raw columns.
	mu.Lock()
	for _, resp := range all {
		if bytes.Contains(resp.Body, []byte(pass)) || bytes.Contains(resp.Body, []byte("not-the-password-1")) {
			t.Errorf("response contains the registry password: %s", resp.Body)
		}
	}
	mu.Unlock()
	if strings.Contains(logs.String(), pass) {
		t.Error("logs contain the registry password")
	}
	var raw string
	if err := env.Store.Pool.QueryRow(context.Background(), `SELECT concat_ws(' ', (SELECT string_agg(t::text, ' ') FROM registries t),
		(SELECT string_agg(encode(password_enc, 'escape'), ' ') FROM registries), (SELECT string_agg(t::text, ' ') FROM audit_log t))`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, pass) || strings.Contains(raw, "not-the-password-1") {
		t.Error("the database holds the registry password in plaintext")
	}
}

// mkUser creates a user with a read grant on some project (so they are a
// real user of the platform) and returns the username.
func mkUser(t *testing.T, env *apitest.Env, name string) string {
	t.Helper()
	h, err := env.App.Auth.HashPassword(t.Context(), apitest.DefaultPassword)
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.CreateUser(context.Background(), env.Store.Pool, store.NewUser{Username: name, PasswordHash: h, Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	team := env.Team("team-"+name, u.ID)
	env.Grant(team, store.ScopeProject, env.Project("proj-"+name), auth.Read)
	return name
}
