package executor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// gatedRegistry is a reverse proxy in front of a real registry that holds
// every manifest and blob request while the gate is closed (a pull that
// takes as long as the test wants).
type gatedRegistry struct {
	host    string
	mu      sync.Mutex
	open    chan struct{} // closed while the gate is open
	waiting chan struct{} // signalled when a request waits at the gate
}

func newGatedRegistry(t *testing.T, upstream string) *gatedRegistry {
	t.Helper()
	g := &gatedRegistry{open: make(chan struct{}), waiting: make(chan struct{}, 100)}
	close(g.open)
	u, _ := url.Parse("http://" + upstream)
	proxy := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/blobs/") {
			g.mu.Lock()
			open := g.open
			g.mu.Unlock()
			select {
			case <-open:
			default:
				g.waiting <- struct{}{}
				select {
				case <-open:
				case <-r.Context().Done():
					return
				}
			}
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { g.setOpen(true); srv.Close() })
	g.host = ln.Addr().String()
	return g
}

func (g *gatedRegistry) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		if !open {
			g.open = make(chan struct{})
		}
	default:
		if open {
			close(g.open)
		}
	}
}

// A sync that finds a service missing and its image gone answers at once
// (it does not hold the control plane's request while pulling): the pull
// and the recreation continue in the background, after the sync's own
// context ended, and the service comes back.
func TestSyncDoesNotWaitForPulls(t *testing.T) {
	requireDocker(t, "removes a container and its image with the docker CLI")
	e := newEnv(t, Config{})
	ctx := testutil.Context(t, 3*time.Minute)
	reg := testutil.StartRegistry(t, "syncpull", "syncpull-password")
	reg.Push(t, demoWebImage, "syncpull/web", "1")
	g := newGatedRegistry(t, reg.Host)
	image := g.host + "/syncpull/web:1"
	auth := &protocol.RegistryAuth{ServerAddress: g.host, Username: "syncpull", Password: "syncpull-password"}
	t.Cleanup(func() { _, _ = testutil.DockerErr("rmi", image) })

	id := int64(time.Now().UnixNano()%1e6 + 7000000)
	spec := specOf(id, []protocol.Node{webNode("api", nil)}, nil, image, auth)
	if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if ds := e.rec.waitDeployment(t, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
		t.Fatalf("%s: %s", ds.Status, ds.Reason)
	}
	before, _ := e.rec.serviceState(id, "api")

	// The service and its image disappear; the registry hangs.
	testutil.Docker(t, "rm", "-f", fmt.Sprintf("nullops-%s-d%d-api", e.node, id))
	testutil.Docker(t, "rmi", image)
	g.setOpen(false)

	// The sync's context ends when it answered, as a dropped connection's would.
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	reply, err := e.ex.Sync(syncCtx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec}})
	cancelSync()
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Deployments) != 1 || reply.Deployments[0].Status != protocol.StatusRunning {
		t.Fatalf("sync reply %+v", reply.Deployments)
	}
	// The reply came while the pull is still held at the gate.
	select {
	case <-g.waiting:
	case <-ctx.Done():
		t.Fatal("the background pull never reached the registry")
	}
	// A second sync meanwhile (the control plane redialled) answers too.
	if _, err := e.ex.Sync(ctx, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec}}); err != nil {
		t.Fatal(err)
	}
	g.setOpen(true)
	st := e.rec.waitServiceState(t, ctx, id, "api", func(s protocol.ServiceState) bool {
		return s.Running && s.ContainerID != "" && s.ContainerID != before.ContainerID
	})
	t.Logf("service recreated in the background: %s", st.ContainerID[:12])
}
