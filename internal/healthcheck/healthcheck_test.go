package healthcheck

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTarget(t *testing.T) {
	for in, want := range map[string]string{
		":8080":         "127.0.0.1:8080",
		"0.0.0.0:80":    "127.0.0.1:80",
		"[::]:5000":     "[::1]:5000",
		"10.0.0.5:8080": "10.0.0.5:8080",
		"localhost:81":  "localhost:81",
	} {
		if got, err := Target(in); err != nil || got != want {
			t.Errorf("Target(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Target("8080"); err == nil {
		t.Error("Target(\"8080\") accepted an address without a port")
	}
}

// The probes answer what an orchestrator needs: serving → nil; an error
// status, a closed port → an error naming the address.
func TestProbes(t *testing.T) {
	ctx := context.Background()
	status := http.StatusOK
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	})
	plain := httptest.NewServer(h)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(h) // self-signed, like the agent's
	defer tlsSrv.Close()
	port := func(s *httptest.Server) string {
		_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
		return ":" + p
	}

	if err := HTTP(ctx, "http", port(plain), "/healthz"); err != nil {
		t.Errorf("http probe of a serving listener: %v", err)
	}
	if err := HTTP(ctx, "https", port(tlsSrv), "/healthz"); err != nil {
		t.Errorf("https probe of a self-signed listener: %v", err)
	}
	if err := TCP(ctx, port(plain)); err != nil {
		t.Errorf("tcp probe: %v", err)
	}
	if err := HTTP(ctx, "http", port(plain), "/nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("probe of a 404 path: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := HTTP(ctx, "http", port(plain), "/healthz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("probe of a 503: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	if err := TCP(ctx, closed); err == nil || !strings.Contains(err.Error(), closed) {
		t.Errorf("tcp probe of a closed port: %v", err)
	}
	if err := HTTP(ctx, "http", closed, "/healthz"); err == nil {
		t.Error("http probe of a closed port succeeded")
	}
}
