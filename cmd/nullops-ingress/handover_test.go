package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// ingressProc is one nullops-ingress process of the handover test.
type ingressProc struct {
	name string
	done chan error // receives the exit status
}

// A nullops-ingress started with the same state dir takes over the
// listening socket of the running one, which drains and exits by itself.
// Request loops through a series of such handovers, over HTTP and HTTPS,
// never see a failed request: neither clients opening a new connection per request (a
// connection the old process accepted must be answered: clients never
// retry a request on a fresh connection) nor keep-alive clients sending
// non-idempotent requests (Go's Transport never retries those, so a
// keep-alive connection closed under a request would show). A successor
// that fails to start after receiving the sockets leaves the running one
// serving. Nothing here depends on timing: every step waits for requests
// to have been answered or for a process to exit.
func TestRestartHandsTheSocketOver(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nullops-ingress")
	testutil.BuildStatic(t, "./cmd/nullops-ingress", bin)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "ok "+r.Method+" "+string(b))
	}))
	defer backend.Close()
	serverURL := fakeServer(t, backend.URL)
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	certFile, keyFile, roots := selfSigned(t)
	stateDir := t.TempDir()
	logDir := t.TempDir()
	start := func(name string, extra ...string) *ingressProc {
		args := append([]string{"--listen=" + addr, "--metrics.listen=", "--server.url=" + serverURL, "--token=t0ken-handover",
			"--statedir=" + stateDir, "--accesslog=false",
			"--tls.listen=" + tlsAddr, "--tls.certfile=" + certFile, "--tls.keyfile=" + keyFile}, extra...)
		cmd := exec.Command(bin, args...)
		logf, err := os.Create(filepath.Join(logDir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &ingressProc{name: name, done: make(chan error, 1)}
		exited := make(chan struct{})
		go func() { p.done <- cmd.Wait(); logf.Close(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("%s log:\n%s", name, b)
			}
		})
		return p
	}
	ctx := testutil.Context(t, 4*time.Minute)
	exit := func(p *ingressProc) error {
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			t.Fatalf("%s did not exit", p.name)
			return nil
		}
	}

	// Clients of both kinds; every error counts, none is retried by the
	// client.
	type loop struct {
		ok, failed atomic.Int64
		errs       sync.Map // error text -> count
	}
	var fresh, keep, freshTLS, keepTLS loop
	var dials, reused, closeAnswers atomic.Int64
	check := func(res *http.Response, err error, want string) error {
		if err != nil {
			return err
		}
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr != nil {
			return rerr
		}
		if res.StatusCode != 200 || string(b) != want {
			return fmt.Errorf("status %d: %q", res.StatusCode, b)
		}
		return nil
	}
	tlsClient := &tls.Config{RootCAs: roots, ServerName: handoverHost}
	freshClient := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: tlsClient}}
	getFresh := func(base string) error {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = handoverHost
		res, err := freshClient.Do(req)
		return check(res, err, "ok GET ")
	}
	postKeepAlive := func(c *http.Client, base string, n int) error {
		body := fmt.Sprintf("request %d", n)
		// A body without GetBody: the Transport cannot replay the request,
		// so it never retries it on another connection.
		req, _ := http.NewRequest(http.MethodPost, base+"/", io.NopCloser(strings.NewReader(body)))
		req.ContentLength = int64(len(body))
		req.Host = handoverHost
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				if i.Reused {
					reused.Add(1)
				} else {
					dials.Add(1)
				}
			},
		}))
		res, err := c.Do(req)
		if err == nil && res.Close {
			closeAnswers.Add(1) // answered by a draining ingress
		}
		return check(res, err, "ok POST "+body)
	}
	procs := []*ingressProc{start("ingress-0")}
	testutil.WaitFor(t, ctx, 20*time.Millisecond, "the first ingress to route", func() bool {
		return getFresh("http://"+addr) == nil && getFresh("https://"+tlsAddr) == nil
	})

	quit := make(chan struct{})
	var wg sync.WaitGroup
	run := func(l *loop, do func(n int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-quit:
					return
				default:
				}
				if err := do(n); err != nil {
					l.failed.Add(1)
					v, _ := l.errs.LoadOrStore(err.Error(), new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	// Three clients of each kind over HTTP, one over HTTPS.
	const workers = 4 // keep-alive clients
	for i := range workers {
		f, k, base := &fresh, &keep, "http://"+addr
		if i == workers-1 {
			f, k, base = &freshTLS, &keepTLS, "https://"+tlsAddr
		}
		run(f, func(int) error { return getFresh(base) })
		c := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, TLSClientConfig: tlsClient}}
		run(k, func(n int) error { return postKeepAlive(c, base, n) })
	}
	// waitOK waits for n more answered requests of each kind.
	waitOK := func(n int64, what string) {
		f, k, ft, kt := fresh.ok.Load()+n, keep.ok.Load()+n, freshTLS.ok.Load()+n/4, keepTLS.ok.Load()+n/4
		testutil.WaitFor(t, ctx, 5*time.Millisecond, what, func() bool {
			return fresh.ok.Load() >= f && keep.ok.Load() >= k && freshTLS.ok.Load() >= ft && keepTLS.ok.Load() >= kt
		})
	}
	const perStep = 400
	waitOK(perStep, "requests through the first ingress")

	// A successor that fails after it received the sockets (its metrics
	// address is taken) leaves the running ingress serving.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if err := exit(start("failing", "--metrics.listen="+taken.Addr().String())); err == nil {
		t.Fatal("a successor that cannot listen on its metrics address exited with 0")
	}
	waitOK(perStep, "requests after a successor failed")
	select {
	case err := <-procs[0].done:
		t.Fatalf("the running ingress stopped when a successor failed to start: %v", err)
	default:
	}

	const handovers = 5
	for i := 1; i <= handovers; i++ {
		procs = append(procs, start(fmt.Sprintf("ingress-%d", i)))
		if err := exit(procs[i-1]); err != nil {
			t.Fatalf("%s exited with %v after handing its socket over", procs[i-1].name, err)
		}
		waitOK(perStep, fmt.Sprintf("requests through ingress-%d", i))
	}
	close(quit)
	wg.Wait()

	report := func(l *loop) string {
		var errs []string
		l.errs.Range(func(k, v any) bool {
			errs = append(errs, fmt.Sprintf("%dx %s", v.(*atomic.Int64).Load(), k))
			return true
		})
		return fmt.Sprintf("%d answered, %d failed %v", l.ok.Load(), l.failed.Load(), errs)
	}
	summary := fmt.Sprintf("HTTP new connection per request: %s; HTTP keep-alive: %s; HTTPS new connection per request: %s; HTTPS keep-alive: %s",
		report(&fresh), report(&keep), report(&freshTLS), report(&keepTLS))
	t.Logf("%d handovers; %s (keep-alive: %d connections, %d reuses, %d answers with Connection: close)",
		handovers, summary, dials.Load(), reused.Load(), closeAnswers.Load())
	if fresh.failed.Load()+keep.failed.Load()+freshTLS.failed.Load()+keepTLS.failed.Load() > 0 {
		t.Fatalf("requests failed across the handovers: %s", summary)
	}
	// Every draining ingress answered the keep-alive connections it held
	// with Connection: close (not by closing them), and they moved on.
	if closeAnswers.Load() < handovers || reused.Load() == 0 || dials.Load() <= workers {
		t.Fatalf("keep-alive connections did not move over by answers with Connection: close: %d connections, %d reuses, %d such answers",
			dials.Load(), reused.Load(), closeAnswers.Load())
	}
	if err := getFresh("https://" + tlsAddr); err != nil {
		t.Fatalf("after the handovers: %v", err)
	}
}

// selfSigned writes a certificate for handoverHost and 127.0.0.1 and its
// key, and returns their files and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: handoverHost},
		DNSNames:     []string{handoverHost},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
