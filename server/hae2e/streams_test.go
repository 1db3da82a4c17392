package hae2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/internal/testutil"
)

// openStream GETs a streaming path through the balancer; lines arrive on
// the channel until the stream ends (then it is closed).
func (w *world) openStream(t *testing.T, ctx context.Context, path, accept string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", w.c.URL+"/api/v1"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+w.admin.token)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// waitLine waits for a line containing want; ok is false when the stream
// ended first.
func waitLine(t *testing.T, ctx context.Context, ch <-chan string, want string) bool {
	t.Helper()
	for {
		select {
		case l, open := <-ch:
			if !open {
				return false
			}
			if strings.Contains(l, want) {
				return true
			}
		case <-ctx.Done():
			t.Fatalf("no line with %q", want)
		}
	}
}

// waitEnd waits until a stream ends.
func waitEnd(t *testing.T, ctx context.Context, ch <-chan string, what string) {
	t.Helper()
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s did not end", what)
		}
	}
}

// The event stream and a follow-mode log through the balancer: when the
// replica serving one dies (kill -9), the stream ends (it does not hang)
// and the client's reconnection, through the balancer, is served by
// another replica and carries on: events committed by any replica reach
// it (PostgreSQL NOTIFY), the log comes from the node's owner.
func TestStreamsThroughTheBalancerWhenTheirReplicaDies(t *testing.T) {
	t.Parallel()
	w := startWorld(t, 3)
	w.addNodes(t, 1)
	ctx := testutil.Context(t, 3*time.Minute)
	first := idOf(t, w.admin.must(t, "POST", "/deployments", map[string]any{"project_id": w.project, "environment_id": w.envID, "name": "logs"}, 202))
	w.waitStatus(t, ctx, first, "running")

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := w.openStream(t, sctx, "/events", "text/event-stream")
	serving := w.c.Serving(t, ctx)
	serving.Kill(t)
	waitEnd(t, ctx, events, "the event stream of the killed replica")
	events = w.openStream(t, sctx, "/events", "text/event-stream")
	second := idOf(t, w.admin.must(t, "POST", "/deployments", map[string]any{"project_id": w.project, "environment_id": w.envID, "name": "after-kill"}, 202))
	if !waitLine(t, ctx, events, fmt.Sprintf(`"deployment_id":%d`, second)) {
		t.Fatal("the reconnected event stream ended before an event of the new deployment")
	}
	w.waitStatus(t, ctx, second, "running")
	serving.Start(t)
	serving.WaitReady(t, ctx)
	w.c.WaitState(t, ctx, serving, true)
	cancel()

	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	// Wait until the event stream's request is gone before counting.
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "no request open", func() bool {
		for _, n := range w.c.Sessions(t) {
			if n != "0" {
				return false
			}
		}
		return true
	})
	logs := w.openStream(t, lctx, fmt.Sprintf("/deployments/%d/logs?service=web&follow=true&tail=20", first), "")
	if !waitLine(t, ctx, logs, "listening") {
		t.Fatal("the log stream ended before the service's first line")
	}
	serving = w.c.Serving(t, ctx)
	serving.Kill(t)
	waitEnd(t, ctx, logs, "the log stream of the killed replica")
	// Reconnect until a replica serves it: the node's owner may have been
	// the killed one, whose lease must expire first.
	testutil.WaitFor(t, ctx, 200*time.Millisecond, "the log through another replica", func() bool {
		st, b, err := w.admin.do("GET", fmt.Sprintf("/deployments/%d/logs?service=web&tail=20", first), nil)
		return err == nil && st == 200 && strings.Contains(string(b), "listening")
	})
}
