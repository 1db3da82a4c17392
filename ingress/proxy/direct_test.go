package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/internal/testutil"
)

// rawBackend answers every request on a connection with resp and then
// closes the connection without saying so (no "Connection: close"): what
// a backend whose keep-alive timeout just fired looks like to a proxy that
// reuses the connection.
func rawBackend(t *testing.T, resp string) (url string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = io.WriteString(c, resp)
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

// TestBackendClosingIdleConnectionsIsRetried: a backend closes every
// connection after one answer; requests without a body that land on such a
// closed, reused connection are sent again on a new one, so no client sees
// a 502.
func TestBackendClosingIdleConnectionsIsRetried(t *testing.T) {
	url, conns := rawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: dynconfig.RouterName(1, "web"), host: "web.test", url: url}), "v1"); err != nil {
		t.Fatal(err)
	}
	c := front.Client()
	for i := 0; i < 50; i++ {
		if code, body, _ := get(t, c, front.URL, "web.test", "/"); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if n := conns.Load(); n < 50 {
		t.Errorf("backend saw %d connections for 50 requests; each must have been a new one", n)
	}
}

// TestCutResponseIsNotPassedOffAsComplete: a backend that announces 1,000
// bytes and sends 10 gives the client an error, not a short 200.
func TestCutResponseIsNotPassedOffAsComplete(t *testing.T) {
	url, _ := rawBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: dynconfig.RouterName(1, "web"), host: "web.test", url: url}), "v1"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	req.Host = "web.test"
	res, err := front.Client().Do(req)
	if err != nil {
		return // refused before the head: also not a complete answer
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil {
		t.Fatalf("client read a complete answer of %d bytes: %q", len(b), b)
	}
}

// TestClientLeavingEndsTheBackendRequest: a client that gives up on a
// long-poll makes the proxy close the backend connection, so the backend's
// handler sees its request end.
func TestClientLeavingEndsTheBackendRequest(t *testing.T) {
	started, ended := make(chan struct{}), make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(ended)
	}))
	t.Cleanup(be.Close)
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: dynconfig.RouterName(1, "web"), host: "web.test", url: be.URL}), "v1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testutil.Context(t, 3*time.Minute))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/poll", nil)
	req.Host = "web.test"
	done := make(chan error, 1)
	go func() {
		res, err := front.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	wait(t, started, "backend request")
	cancel()
	wait(t, ended, "backend request to end after the client left")
	<-done
}

// TestBodiesAndFramingPassThrough: request bodies with a length and
// chunked, HEAD, 204 and a chunked response with trailers arrive as sent;
// hop-by-hop headers and the headers Connection names do not cross.
func TestBodiesAndFramingPassThrough(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Got-Length", fmt.Sprint(r.ContentLength))
			w.Header().Set("X-Got-Te", strings.Join(r.TransferEncoding, ","))
			w.Header().Set("X-Got-Secret", r.Header.Get("X-Hop-Secret"))
			w.Header().Set("Connection", "X-Resp-Hop")
			w.Header().Set("X-Resp-Hop", "must not cross")
			_, _ = w.Write(b)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "part1,")
			http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		}
	}))
	t.Cleanup(be.Close)
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: dynconfig.RouterName(1, "web"), host: "web.test", url: be.URL}), "v1"); err != nil {
		t.Fatal(err)
	}
	c := front.Client()
	do := func(method, path string, body io.Reader, length int64, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, front.URL+path, body)
		req.Host = "web.test"
		req.ContentLength = length
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s %s (%d bytes sent): body: %v (got %d bytes, status %d, header %v)", method, path, length, err, len(b), res.StatusCode, res.Header)
		}
		return res, string(b)
	}
	// Bodies up to 64 KiB take the direct path, larger ones the transport.
	for _, size := range []int{3_000, 150_000} {
		payload := strings.Repeat("abc", size/3)
		res, body := do("POST", "/echo", strings.NewReader(payload), int64(len(payload)),
			map[string]string{"Connection": "X-Hop-Secret", "X-Hop-Secret": "x"})
		if body != payload || res.Header.Get("X-Got-Length") != fmt.Sprint(len(payload)) {
			t.Errorf("POST of %d bytes: %d bytes back, backend saw length %s", size, len(body), res.Header.Get("X-Got-Length"))
		}
		if res.Header.Get("X-Got-Secret") != "" || res.Header.Get("X-Resp-Hop") != "" {
			t.Errorf("headers named by Connection crossed the proxy: %v", res.Header)
		}
	}
	res, body := do("POST", "/echo", io.MultiReader(strings.NewReader("chunk1,"), strings.NewReader("chunk2")), -1, nil)
	if body != "chunk1,chunk2" || res.Header.Get("X-Got-Te") != "chunked" {
		t.Errorf("chunked POST: %q, backend saw transfer encoding %q", body, res.Header.Get("X-Got-Te"))
	}
	if res, body = do("HEAD", "/echo", nil, 0, nil); res.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", res.StatusCode, body)
	}
	if res, body = do("GET", "/empty", nil, 0, nil); res.StatusCode != 204 || body != "" {
		t.Errorf("204: %d %q", res.StatusCode, body)
	}
	if res, body = do("GET", "/trailer", nil, 0, nil); body != "part1,part2" || res.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailers: %q, trailer %v", body, res.Trailer)
	}
}

// TestRemovedBackendConnectionsAreClosed: when a route leaves the table, the
// proxy's idle connections to its backend are closed.
func TestRemovedBackendConnectionsAreClosed(t *testing.T) {
	closed := make(chan struct{}, 16)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: dynconfig.RouterName(1, "web"), host: "web.test", url: be.URL}), "v1"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, front.Client(), front.URL, "web.test", "/"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if _, err := p.Apply(doc(t, routeSpec{name: dynconfig.RouterName(2, "web"), host: "other.test", url: "http://127.0.0.1:9"}), "v2"); err != nil {
		t.Fatal(err)
	}
	wait(t, closed, "the idle backend connection to be closed")
}

func wait[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}
