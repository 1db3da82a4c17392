package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ptypes "github.com/traefik/paerser/types"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api/apitest"
	"github.com/nullops/nullops/server/config"
)

// Responses that carry a token or secret material (and every other API
// answer) tell browsers and proxies not to keep them.
func TestTokenAndSecretResponsesAreNotStored(t *testing.T) {
	env := apitest.New(t)
	envID := env.Environment("qa")
	var node restapi.NodeCreated
	var sec restapi.Secret
	responses := map[string]*apitest.Response{
		"login":         env.Anonymous().Post("/api/v1/auth/login", map[string]string{"username": apitest.AdminUsername, "password": apitest.AdminPassword}).Want(t, 200),
		"token create":  env.Admin.Post("/api/v1/tokens", map[string]any{"name": "ci"}).Want(t, 201),
		"node create":   env.Admin.Post(apitest.Path("/environments/%d/nodes", envID), map[string]any{"name": "n1", "host": "10.0.0.1"}).Want(t, 201),
		"secret create": env.Admin.Post(apitest.Path("/secrets"), map[string]any{"name": "db_password", "value": "s3cr3t-value"}).Want(t, 201),
		"me":            env.Admin.Get("/api/v1/me").Want(t, 200),
		"error":         env.Admin.Get("/api/v1/nodes/999999").Want(t, 404),
	}
	responses["node create"].Decode(t, &node)
	responses["secret create"].Decode(t, &sec)
	responses["node rotate"] = env.Admin.Post(apitest.Path("/nodes/%d/rotate-token", node.Node.ID), nil).Want(t, 200)
	responses["secret read"] = env.Admin.Get(apitest.Path("/secrets/%d", sec.ID)).Want(t, 200)
	for name, r := range responses {
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", name, got)
		}
	}
}

func shortTimeouts(c *config.Config) {
	c.HTTP.ReadHeaderTimeout = ptypes.Duration(time.Second)
	c.HTTP.ReadTimeout = ptypes.Duration(2 * time.Second)
	c.HTTP.IdleTimeout = ptypes.Duration(2 * time.Second)
}

// dribble connects to the server, writes head at once and then body one
// byte every 100 ms, and returns what the server answered (nil when it
// just closed), how many body bytes it took and how long it took.
func dribble(t *testing.T, env *apitest.Env, head, body string) (*http.Response, int, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", env.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int32
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := range len(body) {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	// Generous: the machine may be busy; without a timeout nothing ever comes.
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	took := time.Since(start)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close after %s: the slow client holds the connection", took)
		}
		return nil, int(sent.Load()), took // closed by the server
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, int(sent.Load()), took
}

// A client that sends its body slowly is cut off after the read timeout
// with 408, long before it could finish.
func TestSlowlySentBodyIsCutOff(t *testing.T) {
	env := apitest.New(t, shortTimeouts)
	body := `{"username":"admin","password":"` + strings.Repeat("x", 600) + `"}`
	head := fmt.Sprintf("POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	resp, sent, took := dribble(t, env, head, body)
	t.Logf("cut off after %s and %d of %d body bytes (status %v)", took, sent, len(body), resp != nil && resp.StatusCode == 408)
	if sent >= len(body) {
		t.Fatalf("the whole body (%d bytes) was accepted at 10 bytes/s", len(body))
	}
	if resp != nil && resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
}

// Headers sent slowly are cut off after the header timeout.
func TestSlowlySentHeadersAreCutOff(t *testing.T) {
	env := apitest.New(t, shortTimeouts)
	headers := "X-Filler: " + strings.Repeat("y", 400) + "\r\n\r\n"
	_, sent, took := dribble(t, env, "GET /api/v1/me HTTP/1.1\r\nHost: test\r\n", headers)
	t.Logf("cut off after %s and %d header bytes", took, sent)
	if sent >= len(headers) {
		t.Fatal("all headers accepted at 10 bytes/s")
	}
}

// Long answers are not cut by the read timeout: a long poll of the ingress
// route table answers after its wait, longer than the read timeout.
func TestLongPollOutlivesTheReadTimeout(t *testing.T) {
	env := apitest.New(t, shortTimeouts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { env.App.Ingress.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	c := env.TokenClient(apitest.IngressToken)
	var r *apitest.Response
	testutil.WaitFor(t, testutil.Context(t, 30*time.Second), 50*time.Millisecond, "the route table is computed", func() bool {
		r = c.Get("/api/v1/ingress/traefik")
		return r.Status == 200
	})
	req, err := http.NewRequest(http.MethodGet, env.URL+"/api/v1/ingress/traefik?wait=4s", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apitest.IngressToken)
	req.Header.Set("If-None-Match", r.Header.Get("ETag"))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("long poll cut off after %s: %v", time.Since(start), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified || time.Since(start) < 4*time.Second {
		t.Fatalf("long poll: %d after %s, want 304 after the 4s wait", resp.StatusCode, time.Since(start))
	}
}

// A keep-alive connection left idle is closed after the idle timeout, well
// before the (longer) read timeout would close it.
func TestIdleConnectionIsClosed(t *testing.T) {
	env := apitest.New(t, func(c *config.Config) {
		c.HTTP.ReadHeaderTimeout = ptypes.Duration(time.Minute)
		c.HTTP.ReadTimeout = ptypes.Duration(time.Minute)
		c.HTTP.IdleTimeout = ptypes.Duration(2 * time.Second)
	})
	conn, err := net.Dial("tcp", env.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatalf("the server closed the connection after the first answer (%d): nothing left to time out", resp.StatusCode)
	}
	start := time.Now()
	// Generous: without an idle timeout the read timeout (1 minute) would
	// close it only after this deadline.
	_ = conn.SetReadDeadline(time.Now().Add(40 * time.Second))
	_, err = br.ReadByte()
	took := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("idle connection still open after %s", took)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v after %s, want EOF", err, took)
	}
	t.Logf("idle connection closed after %s", took)
}
