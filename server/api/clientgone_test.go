package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// A request its client abandons (the browser navigated away, the CLI was
// interrupted) ends without an error-level log line and is recorded as
// 499, not as a server error; a real failure still logs an error and
// answers 500.
func TestClientGoneIsNotAServerError(t *testing.T) {
	var sink lockedBuffer
	log := zerolog.New(&sink).Level(zerolog.DebugLevel)
	e := echo.New()
	e.HideBanner = true
	e.HTTPErrorHandler = ErrorHandler(log)
	finished := make(chan struct{}, 2) // the access line is written when this middleware's next returns
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			defer func() { finished <- struct{}{} }()
			return next(c)
		}
	})
	e.Use(RequestLog(log))
	started := make(chan struct{})
	e.GET("/slow", func(c echo.Context) error {
		close(started)
		<-c.Request().Context().Done()
		// What a store call cut short by the request's context returns.
		return fmt.Errorf("crashed services: %w", c.Request().Context().Err())
	})
	e.GET("/broken", func(c echo.Context) error { return errors.New("disk on fire") })
	srv := httptest.NewServer(e)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(2 * time.Minute):
		t.Fatal("the handler never started")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context canceled", err)
	}
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("the server never finished the abandoned request")
	}
	var access map[string]any
	for _, l := range sink.lines(t) {
		if l["level"] == "error" {
			t.Errorf("abandoned request logged an error: %v", l)
		}
		if l["message"] == "http request" {
			access = l
		}
	}
	if access == nil {
		t.Fatal("no access log line for the abandoned request")
	}
	if access["status"] != float64(StatusClientClosedRequest) || access["level"] != "info" {
		t.Errorf("access line %v, want status 499 at info level", access)
	}

	resp, err := http.Get(srv.URL + "/broken")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("real failure answered %d, want 500", resp.StatusCode)
	}
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("the server never finished the failed request")
	}
	var failed bool
	for _, l := range sink.lines(t) {
		if l["level"] == "error" && l["message"] == "request failed" && strings.Contains(fmt.Sprint(l["error"]), "disk on fire") {
			failed = true
		}
	}
	if !failed {
		t.Error("a real server failure was not logged as an error")
	}
}
