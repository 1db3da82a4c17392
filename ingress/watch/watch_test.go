package watch

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/ingress/proxy"
	"github.com/nullops/nullops/internal/testutil"
)

// The end-to-end behaviour (real server, restarts, outage) is tested in
// server/api (TestIngressEndToEnd); these cover the client's own edges with
// a minimal endpoint speaking the same protocol.

type docServer struct {
	mu       sync.Mutex
	body     string
	etag     string
	requests atomic.Int64
	activity []activity.Item
}

func (d *docServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.requests.Add(1)
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodPost {
		var req struct{ Deployments []activity.Item }
		_ = json.NewDecoder(r.Body).Decode(&req)
		d.mu.Lock()
		d.activity = append(d.activity, req.Deployments...)
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	body, etag := d.body, d.etag
	d.mu.Unlock()
	if r.Header.Get("If-None-Match") == etag {
		time.Sleep(50 * time.Millisecond) // a short long-poll
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	_, _ = w.Write([]byte(body))
}

func (d *docServer) set(body, etag string) {
	d.mu.Lock()
	d.body, d.etag = body, etag
	d.mu.Unlock()
}

func TestBrokenDocumentIsNotRefetchedAndStateSurvives(t *testing.T) {
	ds := &docServer{}
	ds.set(`{"http":{"routers":{"d1-web":{"rule":"Host(`+"`a.example.test`"+`)","service":"nullops-offline"}}}}`, `"one"`)
	srv := httptest.NewServer(ds)
	defer srv.Close()
	dir := t.TempDir()
	var applied atomic.Value
	apply := func(body []byte, etag string) ([]dynconfig.Problem, error) {
		if _, err := dynconfig.Decode(body); err != nil {
			return nil, err
		}
		applied.Store(etag)
		return nil, nil
	}
	w, err := New(Options{ServerURL: srv.URL, Token: "tok", StateDir: dir, Wait: time.Second, Apply: apply, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testutil.Context(t, 3*time.Minute))
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	testutil.WaitFor(t, ctx, 10*time.Millisecond, "first document applied", func() bool { return applied.Load() == `"one"` })

	// A broken version is refused once, the previous stays, and the
	// watcher goes back to long-polling instead of hammering the server.
	ds.set(`{"http":`, `"two"`)
	testutil.WaitFor(t, ctx, 10*time.Millisecond, "broken version seen", func() bool { return w.ETag() == `"two"` })
	before := ds.requests.Load()
	time.Sleep(300 * time.Millisecond)
	if n := ds.requests.Load() - before; n > 10 {
		t.Fatalf("%d requests in 300ms after a broken document", n)
	}
	if applied.Load() != `"one"` {
		t.Fatalf("applied %v", applied.Load())
	}
	// Activity goes out with the token.
	if err := w.SendActivity(ctx, []activity.Item{{ID: 7, LastRequestAt: time.Unix(1700000000, 0).UTC()}}); err != nil {
		t.Fatal(err)
	}
	ds.mu.Lock()
	if len(ds.activity) != 1 || ds.activity[0].ID != 7 {
		t.Fatalf("activity received: %+v", ds.activity)
	}
	ds.mu.Unlock()
	cancel()
	<-done

	// The good version was persisted; a new watcher serves it at start.
	var loaded atomic.Value
	w2, _ := New(Options{ServerURL: "http://127.0.0.1:9", Token: "tok", StateDir: dir, Apply: func(b []byte, etag string) ([]dynconfig.Problem, error) {
		loaded.Store(etag)
		return apply(b, etag)
	}, Log: zerolog.Nop()})
	ok, err := w2.LoadState()
	if err != nil || !ok || loaded.Load() != `"one"` || w2.ETag() != `"one"` {
		t.Fatalf("LoadState: %v %v %v", ok, err, loaded.Load())
	}

	// A corrupt state file is reported, not fatal.
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.LoadState(); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt state: %v", err)
	}
}

func TestWrongTokenIsExplained(t *testing.T) {
	srv := httptest.NewServer(&docServer{})
	defer srv.Close()
	w, _ := New(Options{ServerURL: srv.URL, Token: "wrong", StateDir: t.TempDir(), Apply: func([]byte, string) ([]dynconfig.Problem, error) { return nil, nil }})
	err := w.poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused the ingress token") {
		t.Fatalf("poll with a wrong token: %v", err)
	}
}

// TestRefusedDeltaFetchesTheWholeDocument: a delta that does not start at
// the table in use (a server bug, or another server's history) or does not
// decode is refused without touching the table, and the next poll asks for
// the whole document, without Accept for deltas.
func TestRefusedDeltaFetchesTheWholeDocument(t *testing.T) {
	for _, bad := range []string{"wrong base", "garbage"} {
		t.Run(bad, func(t *testing.T) {
			one := dynconfig.NewBuilder(nil, nil)
			one.Unavailable("d1-web", "a.example.test", dynconfig.ServiceDeploying)
			two := dynconfig.NewBuilder(nil, nil)
			two.Backend("d1-web", "a.example.test", "http://10.0.0.1:8080")
			docOne, _ := json.Marshal(one.Configuration())
			docTwo, _ := json.Marshal(two.Configuration())
			etagOne, etagTwo := dynconfig.ConfigETag(one.Configuration()), dynconfig.ConfigETag(two.Configuration())
			delta := []byte("{not json")
			if bad == "wrong base" {
				d := dynconfig.NewState(two.Configuration()).Diff(one.Configuration()) // from two, not one
				delta, _ = json.Marshal(d)
			}
			var fullAsks, deltaAsks atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inm := r.Header.Get("If-None-Match")
				switch {
				case inm == etagTwo:
					time.Sleep(20 * time.Millisecond)
					w.WriteHeader(http.StatusNotModified)
				case inm == etagOne && strings.Contains(r.Header.Get("Accept"), dynconfig.MediaTypeDelta):
					deltaAsks.Add(1)
					w.Header().Set("Content-Type", dynconfig.MediaTypeDelta)
					w.Header().Set("ETag", etagTwo)
					_, _ = w.Write(delta)
				case inm == etagOne:
					fullAsks.Add(1)
					w.Header().Set("ETag", etagTwo)
					_, _ = w.Write(docTwo)
				default:
					w.Header().Set("ETag", etagOne)
					_, _ = w.Write(docOne)
				}
			}))
			defer srv.Close()
			p := proxy.New(proxy.Options{Log: zerolog.Nop(), Incremental: true})
			w, err := New(Options{ServerURL: srv.URL, Token: "tok", StateDir: t.TempDir(), Wait: time.Second,
				Apply: p.Apply, ApplyDelta: p.ApplyDelta, Document: p.Document, Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testutil.Context(t, 2*time.Minute)
			for range 3 {
				if err := w.poll(ctx); err != nil {
					t.Fatal(err)
				}
			}
			s := w.Stats()
			if s.Refused != 1 || s.Full != 2 || s.Delta != 0 || deltaAsks.Load() != 1 || fullAsks.Load() != 1 {
				t.Fatalf("%+v, delta asks %d, full asks %d", s, deltaAsks.Load(), fullAsks.Load())
			}
			if p.ETag() != etagTwo || w.ETag() != etagTwo || p.Current().Count(dynconfig.KindBackend) != 1 {
				t.Fatalf("table %s (watcher %s), want %s with one backend", p.ETag(), w.ETag(), etagTwo)
			}
		})
	}
}
