package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/internal/testutil"
)

const handoverHost = "web.pr-1.qa.example.test"

// fakeServer serves a fixed route table the way nullops-server does
// (ETag, long-poll answered 304).
func fakeServer(t *testing.T, backend string) string {
	b := dynconfig.NewBuilder(nil, nil)
	b.Backend("d1-web", handoverHost, backend)
	body, err := json.Marshal(b.Configuration())
	if err != nil {
		t.Fatal(err)
	}
	const etag = `"v1"`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		w.Header().Set("X-Nullops-Config-Version", "1")
		if r.Header.Get("If-None-Match") == etag {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A new nullops-ingress process started with the same state dir takes over
// the listening socket of the running one, which drains and exits by
// itself: a request loop on fresh connections never meets a refused
// connection (stopping one process and starting another refuses them in
// between; two processes cannot both bind the port).
func TestRestartHandsTheSocketOver(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nullops-ingress")
	testutil.BuildStatic(t, "./cmd/nullops-ingress", bin)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer backend.Close()
	serverURL := fakeServer(t, backend.URL)
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	stateDir := t.TempDir()
	start := func(name string) (*exec.Cmd, <-chan error) {
		cmd := exec.Command(bin, "--listen="+addr, "--metrics.listen=", "--server.url="+serverURL, "--token=t0ken-handover",
			"--statedir="+stateDir, "--accesslog=false")
		logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		exited := make(chan struct{})
		go func() { done <- cmd.Wait(); logf.Close(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("%s log:\n%s", name, b)
			}
		})
		return cmd, done
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	get := func() error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = handoverHost
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	ctx := testutil.Context(t, 2*time.Minute)
	_, oldDone := start("old")
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "the first ingress to route", func() bool { return get() == nil })

	var ok, failed, refused atomic.Int64
	var firstErr atomic.Value
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				if err := get(); err != nil {
					if errors.Is(err, syscall.ECONNREFUSED) {
						refused.Add(1)
					}
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitOK := func(n int64, what string) {
		target := ok.Load() + n
		testutil.WaitFor(t, ctx, 5*time.Millisecond, what, func() bool { return ok.Load() >= target })
	}
	waitOK(300, "requests through the first ingress")
	start("new")
	select {
	case err := <-oldDone:
		if err != nil {
			t.Errorf("the old ingress exited with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the old ingress did not exit after handing its socket over")
	}
	waitOK(300, "requests through the new ingress")
	close(quit)
	wg.Wait()
	t.Logf("requests: %d answered, %d failed (first: %v), %d refused", ok.Load(), failed.Load(), firstErr.Load(), refused.Load())
	if n := refused.Load(); n > 0 {
		t.Fatalf("%d connections refused during the restart", n)
	}
	// A few connections closed without an answer at the moment of the
	// handover remain (0-3 per handover in our runs): not a refusal, but
	// still a failed request; more than 10 is a regression.
	if n := failed.Load(); n > 10 {
		t.Fatalf("%d of %d requests failed during the restart (first: %v)", n, n+ok.Load(), firstErr.Load())
	}
	if code := get(); code != nil {
		t.Fatalf("after the restart: %v", code)
	}
}
