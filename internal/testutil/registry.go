package testutil

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/nullops/nullops/internal/registryconf"
)

// Registry is a real docker-registry (Debian's distribution build) on
// loopback with htpasswd authentication.
type Registry struct {
	Host         string // 127.0.0.1:port
	Username     string
	Password     string
	dockerConfig string
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may hand the same port out again at once; a port
		// given to one caller of this process is never given to another
		// (an agent's listener and its debug listener got the same one).
		if _, taken := portsGiven.LoadOrStore(p, true); !taken {
			return p
		}
	}
}

// portsGiven are the ports FreePort returned in this process.
var portsGiven sync.Map

// StartRegistry starts docker-registry with one htpasswd user; it is stopped
// when the test ends.
func StartRegistry(t testing.TB, username, password string) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry is not installed: run `make test` (scripts/setup.sh installs the Debian package docker-registry)")
	}
	dir := t.TempDir()
	port := FreePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cfgPath, err := registryconf.Write(dir, host, "nullops-test", username, password, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not start on %s: %v\n%s", host, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := &Registry{Host: host, Username: username, Password: password, dockerConfig: filepath.Join(dir, "docker-config")}
	login := exec.Command("docker", "login", "-u", username, "--password-stdin", host)
	login.Env = append(os.Environ(), "DOCKER_CONFIG="+r.dockerConfig)
	login.Stdin = strings.NewReader(password)
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("docker login %s: %v\n%s", host, err, out)
	}
	return r
}

// Push tags the local image ref as <host>/<repo>:<tag> for every tag and
// pushes it; it returns the pushed references.
func (r *Registry) Push(t testing.TB, ref, repo string, tags ...string) []string {
	t.Helper()
	var refs []string
	for _, tag := range tags {
		target := fmt.Sprintf("%s/%s:%s", r.Host, repo, tag)
		Docker(t, "tag", ref, target)
		push := exec.Command("docker", "push", "-q", target)
		push.Env = append(os.Environ(), "DOCKER_CONFIG="+r.dockerConfig)
		if out, err := push.CombinedOutput(); err != nil {
			t.Fatalf("docker push %s: %v\n%s", target, err, out)
		}
		refs = append(refs, target)
	}
	t.Cleanup(func() {
		for _, ref := range refs {
			_, _ = DockerErr("rmi", ref)
		}
	})
	return refs
}
