package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/ingress/proxy"
	"github.com/nullops/nullops/internal/testutil"
)

// backend is a real HTTP server answering with its name and what it saw, a
// WebSocket echo at /ws, a slow endpoint and a server-sent-events stream.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"backend": name, "host": r.Host, "path": r.URL.Path,
			"xff": r.Header.Get("X-Forwarded-For"), "xfh": r.Header.Get("X-Forwarded-Host"), "xfp": r.Header.Get("X-Forwarded-Proto"),
			"xri": strings.Join(r.Header.Values("X-Real-Ip"), ","), "fwd": r.Header.Get("Forwarded"),
		})
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		fmt.Fprint(w, "slow done")
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		// The stream stays open until the client leaves: a proxy that
		// buffered it would deliver nothing before then.
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Minute):
		}
		fmt.Fprint(w, "data: last\n\n")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(name+":"), msg...)); err != nil {
				return
			}
		}
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

type routeSpec struct {
	name, host, url, sentinel string
}

func doc(t testing.TB, specs ...routeSpec) []byte {
	t.Helper()
	b := dynconfig.NewBuilder(nil, nil)
	for _, s := range specs {
		if s.sentinel != "" {
			b.Unavailable(s.name, s.host, s.sentinel)
		} else {
			b.Backend(s.name, s.host, s.url)
		}
	}
	data, err := json.Marshal(b.Configuration())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newProxy(t *testing.T, tr *activity.Tracker) (*proxy.Proxy, *httptest.Server) {
	t.Helper()
	p := proxy.New(proxy.Options{Log: zerolog.Nop(), Activity: tr})
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return p, s
}

func get(t *testing.T, c *http.Client, base, host, path string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func TestRoutingPagesAndForwardedHeaders(t *testing.T) {
	web := backend(t, "web")
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tr := activity.NewTracker()
	p, front := newProxy(t, tr)
	problems, err := p.Apply(doc(t,
		routeSpec{name: dynconfig.RouterName(1, "web"), host: "web.pr-1.qa.example.test", url: web.URL},
		routeSpec{name: dynconfig.RouterName(2, "web"), host: "web.pr-2.qa.example.test", sentinel: dynconfig.ServiceOffline},
		routeSpec{name: dynconfig.RouterName(3, "web"), host: "web.pr-3.qa.example.test", sentinel: dynconfig.ServiceDeploying},
		routeSpec{name: dynconfig.RouterName(4, "web"), host: "web.pr-4.qa.example.test", url: deadURL},
	), `"v1"`)
	if err != nil || len(problems) != 0 {
		t.Fatalf("apply: %v %v", err, problems)
	}
	c := front.Client()

	code, body, _ := get(t, c, front.URL, "WEB.pr-1.qa.example.test:8080", "/some/path")
	var seen map[string]string
	if code != 200 || json.Unmarshal([]byte(body), &seen) != nil {
		t.Fatalf("routed request: %d %s", code, body)
	}
	want := map[string]string{"backend": "web", "host": "WEB.pr-1.qa.example.test:8080", "path": "/some/path",
		"xff": "127.0.0.1", "xfh": "WEB.pr-1.qa.example.test:8080", "xfp": "http"}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("backend saw %s=%q, want %q", k, seen[k], v)
		}
	}
	if items := tr.Pending(); len(items) != 1 || items[0].ID != 1 {
		t.Errorf("activity of deployment 1 not recorded: %+v", items)
	}

	for _, c2 := range []struct {
		host   string
		status int
		text   string
	}{
		{"nothing.qa.example.test", 404, "No deployment here"},
		{"web.pr-2.qa.example.test", 503, "is offline"},
		{"web.pr-3.qa.example.test", 503, "still being deployed"},
		{"web.pr-4.qa.example.test", 502, "did not answer"},
		{"x&y'.example.test", 404, "x&amp;y&#39;.example.test"},
	} {
		code, body, h := get(t, c, front.URL, c2.host, "/")
		if code != c2.status || !strings.Contains(body, c2.text) || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %q, want %d with %q", c2.host, code, body, c2.status, c2.text)
		}
		if !strings.Contains(c2.host, "&") && !strings.Contains(body, c2.host) {
			t.Errorf("%s: page does not name the host: %s", c2.host, body)
		}
	}
}

// TestClientForwardingHeadersAreReplaced sends made-up X-Real-IP,
// X-Forwarded-* and Forwarded headers: the backend sees only the addresses
// the ingress itself observed.
func TestClientForwardingHeadersAreReplaced(t *testing.T) {
	web := backend(t, "web")
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: "d1-web", host: "web.example.test", url: web.URL}), `"v1"`); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	req.Host = "web.example.test"
	req.Header.Add("X-Real-IP", "10.6.6.6")
	req.Header.Add("X-Real-IP", "10.7.7.7")
	req.Header.Set("X-Forwarded-For", "10.6.6.6")
	req.Header.Set("X-Forwarded-Host", "evil.example.test")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=10.6.6.6")
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var seen map[string]string
	if err := json.NewDecoder(res.Body).Decode(&seen); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"xri": "127.0.0.1", "xff": "127.0.0.1", "xfh": "web.example.test", "xfp": "http", "fwd": ""}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("backend saw %s=%q, want %q (client-supplied value not replaced)", k, seen[k], v)
		}
	}
}

// TestNoClientForwardingHeaderReachesTheBackend: on both paths (direct
// and ReverseProxy), no forwarding header the client made up reaches the
// backend: not the rest of X-Forwarded-* (-Port, -Prefix, -Server…), not
// other spellings (case, underscores, which CGI, WSGI and PHP servers read
// as the same header), and X-Real-IP is the connection's address.
func TestNoClientForwardingHeaderReachesTheBackend(t *testing.T) {
	dump := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(dump.Close)
	made := map[string]string{
		"X-Real-Ip": "10.6.6.6", "X_Real_IP": "10.6.6.6", "x_real_ip": "10.6.6.6",
		"X-Forwarded-For": "10.6.6.6", "X_Forwarded_For": "10.6.6.6", "X-Forwarded-Port": "8443",
		"X-Forwarded-Prefix": "/evil", "X-Forwarded-Server": "evil", "X-Forwarded-Uri": "/evil",
		"X-Forwarded-Ssl": "on", "X_Forwarded_Host": "evil.example.test", "Forwarded": "for=10.6.6.6",
	}
	for name, opts := range map[string]proxy.Options{
		"direct":       {Log: zerolog.Nop()},
		"reverseproxy": {Log: zerolog.Nop(), Transport: http.DefaultTransport.(*http.Transport).Clone()},
	} {
		t.Run(name, func(t *testing.T) {
			p := proxy.New(opts)
			front := httptest.NewServer(p)
			t.Cleanup(front.Close)
			if _, err := p.Apply(doc(t, routeSpec{name: "d1-web", host: "web.example.test", url: dump.URL}), `"v1"`); err != nil {
				t.Fatal(err)
			}
			conn, err := net.Dial("tcp", front.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Written by hand: the client library would canonicalize or
			// refuse some of these names.
			var b strings.Builder
			b.WriteString("GET / HTTP/1.1\r\nHost: web.example.test\r\nX-Keep: yes\r\n")
			for k, v := range made {
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
			b.WriteString("Connection: close\r\n\r\n")
			if _, err := io.WriteString(conn, b.String()); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			var seen http.Header
			if err := json.NewDecoder(res.Body).Decode(&seen); err != nil {
				t.Fatal(err)
			}
			for k, vs := range seen {
				for _, v := range vs {
					if strings.Contains(v, "10.6.6.6") || strings.Contains(v, "evil") || v == "8443" || v == "on" {
						t.Errorf("backend saw the client's %s: %q", k, v)
					}
				}
			}
			if got := seen.Values("X-Real-Ip"); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("X-Real-Ip %q, want the connection's address", got)
			}
			if got := seen.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For %q, want the connection's address", got)
			}
			if seen.Get("X-Keep") != "yes" {
				t.Errorf("an ordinary header was dropped: %v", seen)
			}
		})
	}
}

func TestStreamingIsFlushedAtOnce(t *testing.T) {
	web := backend(t, "web")
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: "d1-web", host: "web.example.test", url: web.URL}), `"v1"`); err != nil {
		t.Fatal(err)
	}
	// Well before the backend ends the stream (5 min): a buffered first
	// event would not arrive within this.
	ctx := testutil.Context(t, 2*time.Minute)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/events", nil)
	req.Host = "web.example.test"
	start := time.Now()
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event (not flushed at once: the stream was buffered?): %q %v", line, err)
	}
	t.Logf("first event after %v", time.Since(start))
}

// TestHotSwapUnderLoad swaps the routing table hundreds of times while
// clients keep requests and WebSockets open through the ingress: requests to
// the route that stays never fail, WebSockets stay open (also one whose
// route is removed), and an in-flight request to a removed route finishes.
func TestHotSwapUnderLoad(t *testing.T) {
	stable := backend(t, "stable")
	churn := backend(t, "churn")
	p, front := newProxy(t, nil)
	stableRoute := routeSpec{name: "d1-web", host: "web.stable.qa.example.test", url: stable.URL}
	goneRoute := routeSpec{name: "d2-web", host: "web.gone.qa.example.test", url: churn.URL}
	if _, err := p.Apply(doc(t, stableRoute, goneRoute), `"v0"`); err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t, time.Minute)
	wsURL := "ws" + strings.TrimPrefix(front.URL, "http") + "/ws"
	dial := func(host string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Host: host})
		if err != nil {
			t.Fatalf("websocket to %s: %v", host, err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	echo := func(c *websocket.Conn, msg, want string) error {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if string(got) != want {
			return fmt.Errorf("echo %q, want %q", got, want)
		}
		return nil
	}
	wsStable := dial(stableRoute.host)
	wsGone := dial(goneRoute.host)

	// A slow request to the route about to disappear.
	slowDone := make(chan string, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/slow", nil)
		req.Host = goneRoute.host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			slowDone <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		slowDone <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()
	time.Sleep(100 * time.Millisecond)

	stop := make(chan struct{})
	var requests, failures atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
				req.Host = stableRoute.host
				res, err := client.Do(req)
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || !strings.Contains(string(b), `"backend":"stable"`) {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", res.StatusCode, b))
				}
			}
		}()
	}
	wsErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				wsErr <- nil
				return
			default:
			}
			if err := echo(wsStable, fmt.Sprint(i), fmt.Sprintf("stable:%d", i)); err != nil {
				wsErr <- err
				return
			}
		}
	}()

	// Swap 300 times: the gone route disappears at once; 0-50 churn routes
	// come and go; the stable route is always present.
	rng := rand.New(rand.NewPCG(1, 2))
	swaps := 300
	for i := range swaps {
		specs := []routeSpec{stableRoute}
		for k := range rng.IntN(50) {
			id := int64(100 + rng.IntN(200))
			specs = append(specs, routeSpec{name: dynconfig.RouterName(id, "web"), host: fmt.Sprintf("web.c%d-%d.qa.example.test", id, k), url: churn.URL})
		}
		if _, err := p.Apply(doc(t, specs...), fmt.Sprintf(`"v%d"`, i+1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if err := <-wsErr; err != nil {
		t.Fatalf("WebSocket through the stable route broke during swaps: %v", err)
	}
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests to the unchanged route failed during %d swaps; first: %v", f, requests.Load(), swaps, firstFailure.Load())
	}
	if requests.Load() < 100 {
		t.Fatalf("only %d requests ran during the swaps", requests.Load())
	}
	// In-flight request and WebSocket on the removed route finish on the old table.
	if got := <-slowDone; got != "200 slow done" {
		t.Fatalf("in-flight request to a removed route: %s", got)
	}
	if err := echo(wsGone, "still", "churn:still"); err != nil {
		t.Fatalf("WebSocket opened before its route was removed: %v", err)
	}
	// New requests to the removed route get the 404 page.
	if code, _, _ := get(t, front.Client(), front.URL, goneRoute.host, "/"); code != 404 {
		t.Fatalf("removed route answers %d", code)
	}
	t.Logf("%d requests, %d swaps, 0 failures", requests.Load(), swaps)
}

func TestApplyRefusesBrokenDocumentAndKeepsTable(t *testing.T) {
	web := backend(t, "web")
	p, front := newProxy(t, nil)
	if _, err := p.Apply(doc(t, routeSpec{name: "d1-web", host: "web.example.test", url: web.URL}), `"v1"`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply([]byte(`{"http":{"routers":`), `"v2"`); err == nil {
		t.Fatal("truncated document accepted")
	}
	if p.Current().Version != `"v1"` {
		t.Fatalf("table replaced by a broken document: %s", p.Current().Version)
	}
	if code, _, _ := get(t, front.Client(), front.URL, "web.example.test", "/"); code != 200 {
		t.Fatalf("route lost after a refused document: %d", code)
	}
	// One broken router does not stop the others.
	bad := doc(t, routeSpec{name: "d1-web", host: "web.example.test", url: web.URL})
	bad = []byte(strings.Replace(string(bad), `"routers":{`, `"routers":{"x":{"rule":"PathPrefix(`+"`/`"+`)","service":"d1-web"},`, 1))
	problems, err := p.Apply(bad, `"v3"`)
	if err != nil || len(problems) != 1 || problems[0].Router != "x" {
		t.Fatalf("broken router: %v %v", err, problems)
	}
	if code, _, _ := get(t, front.Client(), front.URL, "web.example.test", "/"); code != 200 {
		t.Fatalf("good route not served next to a broken one: %d", code)
	}
}

// TestTLSListenerSetsForwardedProto checks X-Forwarded-Proto on HTTPS.
func TestTLSListenerSetsForwardedProto(t *testing.T) {
	web := backend(t, "web")
	p := proxy.New(proxy.Options{Log: zerolog.Nop()})
	front := httptest.NewTLSServer(p)
	t.Cleanup(front.Close)
	if _, err := p.Apply(doc(t, routeSpec{name: "d1-web", host: "web.example.test", url: web.URL}), `"v1"`); err != nil {
		t.Fatal(err)
	}
	_, body, _ := get(t, front.Client(), front.URL, "web.example.test", "/")
	if !strings.Contains(body, `"xfp":"https"`) {
		t.Fatalf("X-Forwarded-Proto over TLS: %s", body)
	}
}
