package drain_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nullops/nullops/ingress/drain"
	"github.com/nullops/nullops/internal/testutil"
)

// closeSignal is a listener that says when it has been closed (Drain
// stopped accepting).
type closeSignal struct {
	net.Listener
	closed chan struct{}
}

func (l *closeSignal) Close() error {
	err := l.Listener.Close()
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return err
}

type fixture struct {
	s      *drain.Server
	ln     *closeSignal
	addr   string
	states chan http.ConnState // every state change, in order
}

func start(t *testing.T, h http.Handler, tlsConfig *tls.Config) *fixture {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ln: &closeSignal{Listener: l, closed: make(chan struct{})}, addr: l.Addr().String(), states: make(chan http.ConnState, 100)}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, ConnState: func(_ net.Conn, st http.ConnState) { f.states <- st }}
	f.s = drain.Start(srv, f.ln, tlsConfig)
	t.Cleanup(func() { _ = l.Close() })
	return f
}

func (f *fixture) waitState(t *testing.T, ctx context.Context, want http.ConnState) {
	t.Helper()
	for {
		select {
		case st := <-f.states:
			if st == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no connection reached %v", want)
		}
	}
}

type drained struct {
	cut int
	err error
}

func (f *fixture) drain(ctx context.Context, o drain.Options) <-chan drained {
	done := make(chan drained, 1)
	go func() {
		cut, err := f.s.Drain(ctx, o)
		done <- drained{cut, err}
	}()
	return done
}

func result(t *testing.T, ctx context.Context, done <-chan drained) drained {
	t.Helper()
	select {
	case d := <-done:
		return d
	case <-ctx.Done():
		t.Fatal("Drain did not return")
		return drained{}
	}
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	_, _ = io.WriteString(w, "hello "+string(b))
})

func readAnswer(t *testing.T, br *bufio.Reader) (body string, closing bool) {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("answer %d %q (%v)", res.StatusCode, b, err)
	}
	return string(b), res.Close
}

// The request of a connection accepted before the drain began, read only
// after it began, is answered (http.Server.Shutdown closes such a
// connection unanswered, and clients never retry on a fresh connection),
// with Connection: close; then the connection is closed and Drain returns.
func TestDrainAnswersARequestThatArrivesAfterItBegan(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	f := start(t, hello, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.waitState(t, ctx, http.StateNew)
	done := f.drain(ctx, drain.Options{Idle: time.Hour})
	<-f.ln.closed
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if body, closing := readAnswer(t, br); body != "hello " || !closing {
		t.Fatalf("answer %q, Connection: close %v", body, closing)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer: %v, want EOF", err)
	}
	if d := result(t, ctx, done); d.cut != 0 || d.err != nil {
		t.Fatalf("Drain: %d cut, %v", d.cut, d.err)
	}
}

// A keep-alive connection idle when the drain began carries its next
// request — a POST, which no client retries — and gets it answered with
// Connection: close.
func TestDrainAnswersTheNextRequestOfAKeepAliveConnection(t *testing.T) {
	ctx := testutil.Context(t, time.Minute)
	f := start(t, hello, nil)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"); err != nil {
		t.Fatal(err)
	}
	if body, closing := readAnswer(t, br); body != "hello one" || closing {
		t.Fatalf("before the drain: %q, Connection: close %v", body, closing)
	}
	f.waitState(t, ctx, http.StateIdle)
	done := f.drain(ctx, drain.Options{Idle: time.Hour})
	<-f.ln.closed
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"); err != nil {
		t.Fatal(err)
	}
	if body, closing := readAnswer(t, br); body != "hello two" || !closing {
		t.Fatalf("while draining: %q, Connection: close %v", body, closing)
	}
	if d := result(t, ctx, done); d.cut != 0 || d.err != nil {
		t.Fatalf("Drain: %d cut, %v", d.cut, d.err)
	}
}

// A keep-alive connection that stays idle is closed after the idle grace
// (over TLS too), without an answer to anything; a connection whose first
// request has not arrived is not closed meanwhile, and its request is
// answered.
func TestDrainClosesIdleConnectionsButNotNewOnes(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	serverTLS, clientTLS := ts.TLS.Clone(), ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	ts.Close()
	clientTLS.ServerName = "example.com" // in httptest's certificate
	for _, tc := range []struct {
		name   string
		server *tls.Config
		dial   func(addr string) (net.Conn, error)
	}{
		{"http", nil, func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }},
		{"https", serverTLS, func(addr string) (net.Conn, error) { return tls.Dial("tcp", addr, clientTLS) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testutil.Context(t, time.Minute)
			f := start(t, hello, tc.server)
			idle, err := tc.dial(f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			br := bufio.NewReader(idle)
			if _, err := io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			readAnswer(t, br)
			f.waitState(t, ctx, http.StateIdle)
			fresh, err := net.Dial("tcp", f.addr) // plain TCP: its TLS handshake has not begun either
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			f.waitState(t, ctx, http.StateNew)

			done := f.drain(ctx, drain.Options{Idle: time.Millisecond})
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("the idle connection got bytes, want it closed")
			}
			// The drain has closed the idle connection and looked at the
			// new one: it is still open, and answered.
			if tc.server != nil {
				fresh = tls.Client(fresh, clientTLS)
			}
			if _, err := io.WriteString(fresh, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if body, closing := readAnswer(t, bufio.NewReader(fresh)); body != "hello " || !closing {
				t.Fatalf("new connection: %q, Connection: close %v", body, closing)
			}
			if d := result(t, ctx, done); d.cut != 0 || d.err != nil {
				t.Fatalf("Drain: %d cut, %v", d.cut, d.err)
			}
		})
	}
}

// Drain waits for hijacked connections (WebSockets through the proxy)
// when asked to, and closes them only when its context ends; otherwise it
// closes them at once.
func TestDrainAndHijackedConnections(t *testing.T) {
	for _, wait := range []bool{true, false} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			ctx := testutil.Context(t, time.Minute)
			f := start(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				c, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
				_ = brw.Flush()
				_, _ = io.Copy(c, c) // echo until closed
			}), nil)
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", res, err)
			}
			f.waitState(t, ctx, http.StateHijacked)
			dctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := f.drain(dctx, drain.Options{WaitUpgraded: wait})
			if !wait {
				if d := result(t, ctx, done); d.cut != 0 || d.err != nil {
					t.Fatalf("Drain: %d cut, %v", d.cut, d.err)
				}
				if _, err := br.ReadByte(); err == nil {
					t.Fatal("the upgraded connection is still open after the drain")
				}
				return
			}
			<-f.ln.closed
			// Still served while the drain waits.
			if _, err := io.WriteString(c, "ping\n"); err != nil {
				t.Fatal(err)
			}
			if line, err := br.ReadString('\n'); line != "ping\n" {
				t.Fatalf("echo while draining: %q %v", line, err)
			}
			cancel()
			if d := result(t, ctx, done); d.cut != 1 || !errors.Is(d.err, context.Canceled) {
				t.Fatalf("Drain: %d cut, %v; want the upgraded connection cut at the deadline", d.cut, d.err)
			}
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("the upgraded connection is still open after the deadline")
			}
		})
	}
}

// A server whose listener fails stops by itself and says why.
func TestServerStopsWhenItsListenerFails(t *testing.T) {
	f := start(t, hello, nil)
	_ = f.ln.Listener.Close()
	<-f.s.Stopped()
	if err := f.s.Err(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Err() = %v", err)
	}
}
