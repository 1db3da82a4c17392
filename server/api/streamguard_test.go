package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/api"
	"github.com/nullops/nullops/server/api/apitest"
)

// An open event stream does not count as use of its session: the session
// idles out as if the stream were not there, and the stream ends with it
// (within 5 s, saying why).
func TestEventStreamEndsWhenItsSessionIdlesOut(t *testing.T) {
	env := apitest.New(t)
	c := env.Session(env.User("watcher", false))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+apitest.Path("/events"), nil)
	c.Prepare(req)
	resp, err := (&http.Client{Jar: c.HTTP.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %d", resp.StatusCode)
	}
	out := &testutil.SyncBuffer{}
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(out, resp.Body); close(ended) }()
	testutil.WaitFor(t, ctx, 10*time.Millisecond, "hello event", func() bool { return strings.Contains(out.String(), "event: hello") })

	idle := time.Duration(env.App.Config.Session.IdleTimeout)
	// Half the idle timeout passes while the stream is checked at least
	// twice: a check that recorded use would renew the session here.
	env.Clock.Advance(idle / 2)
	time.Sleep(3 * api.StreamRecheck)
	env.Clock.Advance(idle/2 + time.Minute)
	start := time.Now()
	select {
	case <-ended:
	case <-time.After(2 * time.Minute):
		t.Fatalf("stream still open 2 minutes after its session idled out: %q", out.String())
	}
	t.Logf("closed %v after the session idled out", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out.String(), "event: closed") || !strings.Contains(out.String(), "access ended") {
		t.Fatalf("the stream did not say why it ended: %q", out.String())
	}
	if r := c.Get(apitest.Path("/me")); r.Status != http.StatusUnauthorized {
		t.Fatalf("the session is still valid: %d", r.Status)
	}
}
