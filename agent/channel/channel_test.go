package channel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/journal"
	"github.com/nullops/nullops/protocol"
)

const token = "nullops-node_test-token-0123456789"

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixedHost struct{}

func (fixedHost) Capacity() protocol.Capacity {
	return protocol.Capacity{CPUs: 4, MemoryMB: 8192, DiskMB: 100000}
}
func (fixedHost) Usage() protocol.Usage { return protocol.Usage{CPUPercent: 10, MemoryUsedMB: 1000} }

type fixture struct {
	srv  *Server
	j    *journal.Journal
	url  string
	logs *syncBuf
}

func newFixture(t *testing.T, h Handler, opts ...func(*Options)) *fixture {
	t.Helper()
	j, err := journal.Open(filepath.Join(t.TempDir(), journal.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	logs := &syncBuf{}
	o := Options{Token: token, Version: "1.2.3", Journal: j, Host: fixedHost{}, Handler: h,
		Log: zerolog.New(logs), MetricsInterval: 100 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	srv := New(o)
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	hs.StartTLS()
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return &fixture{srv: srv, j: j, url: "wss" + strings.TrimPrefix(hs.URL, "https") + protocol.PathConnect, logs: logs}
}

type client struct {
	peer   *protocol.Peer
	frames chan protocol.Envelope
	frozen chan struct{} // closed by freeze: the read loop blocks for good
	once   sync.Once
}

// freeze stops the client's read loop (at its next frame), so it neither
// reads nor answers pings any more.
func (c *client) freeze() { c.once.Do(func() { close(c.frozen) }) }

func (f *fixture) dial(t *testing.T, ctx context.Context, tok string) (*client, *http.Response, error) {
	t.Helper()
	return f.dialEpoch(t, ctx, tok, "")
}

// dialEpoch dials presenting epoch in protocol.HeaderEpoch ("" = none).
func (f *fixture) dialEpoch(t *testing.T, ctx context.Context, tok, epoch string) (*client, *http.Response, error) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test server
	hdr := http.Header{}
	if tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	if epoch != "" {
		hdr.Set(protocol.HeaderEpoch, epoch)
	}
	conn, resp, err := websocket.Dial(ctx, f.url, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: hdr})
	if err != nil {
		return nil, resp, err
	}
	c := &client{frames: make(chan protocol.Envelope, 1000), frozen: make(chan struct{})}
	c.peer = protocol.NewPeer(conn, "s", func(ctx context.Context, _ *protocol.Peer, e protocol.Envelope) {
		select {
		case <-c.frozen:
			<-ctx.Done()
			return
		default:
		}
		c.frames <- e
	})
	go c.peer.Run(ctx) //nolint:errcheck
	t.Cleanup(func() { _ = conn.CloseNow() })
	return c, resp, nil
}

func (c *client) hello(t *testing.T, ctx context.Context) protocol.HelloReply {
	t.Helper()
	r, err := protocol.CallHello.Do(ctx, c.peer, protocol.HelloRequest{ServerVersion: "1.2.3", ProtocolVersion: protocol.Version})
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	return r
}

// nextEvent returns the next journaled event frame (skipping metrics).
func (c *client) nextEvent(t *testing.T, ctx context.Context) protocol.Envelope {
	t.Helper()
	for {
		select {
		case e := <-c.frames:
			if protocol.IsEvent(e.Type) {
				return e
			}
		case <-ctx.Done():
			t.Fatal("no event arrived")
		}
	}
}

func emit(t *testing.T, j *journal.Journal, chunk string) uint64 {
	t.Helper()
	seq, err := j.Emit(protocol.StepLog{DeploymentID: 1, Step: "s", Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// testWait bounds every wait of these tests: generous, because the suite
// runs on saturated machines where a goroutine can wait seconds for a CPU.
const testWait = 2 * time.Minute

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

func TestMissingOrWrongTokenIs401AndLogged(t *testing.T) {
	f := newFixture(t, nil)
	ctx := ctxT(t)
	for _, tok := range []string{"", "wrong-token-wrong-token", token + "x"} {
		_, resp, err := f.dial(t, ctx, tok)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: err %v, resp %+v; want 401", tok, err, resp)
		}
	}
	if st := f.srv.Stats(); st.Refused != 3 || st.Accepted != 0 || st.Connected {
		t.Fatalf("stats %+v", st)
	}
	logs := f.logs.String()
	if strings.Count(logs, "control-plane connection refused: 401") != 3 || !strings.Contains(logs, `"reason":"wrong token"`) ||
		!strings.Contains(logs, `"reason":"missing bearer token"`) {
		t.Fatalf("refusals not logged as expected:\n%s", logs)
	}
	if strings.Contains(logs, "wrong-token-wrong-token") || strings.Contains(logs, token) {
		t.Fatal("a token appears in the log")
	}
}

func TestHelloThenReplayOfUnackedEventsThenLiveEvents(t *testing.T) {
	f := newFixture(t, nil)
	ctx := ctxT(t)
	for i := 0; i < 3; i++ {
		emit(t, f.j, "before")
	}
	if err := f.j.Ack(1); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.dial(t, ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	// Requests before hello are refused.
	var re *protocol.RemoteError
	if _, err := protocol.CallSync.Do(ctx, c.peer, protocol.SyncRequest{}); !errors.As(err, &re) || !strings.Contains(re.Message, "hello first") {
		t.Fatalf("sync before hello: %v", err)
	}
	h := c.hello(t, ctx)
	if h.AgentVersion != "1.2.3" || h.ProtocolVersion != protocol.Version || h.InstanceID != f.j.InstanceID() ||
		h.LastAckedSeq != 1 || h.Capacity.CPUs != 4 || h.Capacity.MemoryMB != 8192 || h.Capacity.DiskMB != 100000 {
		t.Fatalf("hello reply %+v", h)
	}
	for _, want := range []uint64{2, 3} {
		if e := c.nextEvent(t, ctx); e.Seq != want {
			t.Fatalf("replay: seq %d, want %d", e.Seq, want)
		}
	}
	if err := protocol.MsgAck.Send(ctx, c.peer, protocol.Ack{Seq: 3}); err != nil {
		t.Fatal(err)
	}
	live := emit(t, f.j, "live")
	if e := c.nextEvent(t, ctx); e.Seq != live || e.Type != protocol.TypeStepLog {
		t.Fatalf("live event: %+v", e)
	}
	deadline := time.Now().Add(testWait)
	for f.j.LastAcked() != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f.j.LastAcked() != 3 {
		t.Fatalf("ack not recorded: %d", f.j.LastAcked())
	}
	// Metrics are pushed periodically.
	deadline = time.Now().Add(testWait)
	for {
		select {
		case e := <-c.frames:
			if e.Type == protocol.TypeMetrics {
				m, err := protocol.DecodeBody[protocol.Metrics](e)
				if err != nil || m.Capacity.CPUs != 4 {
					t.Fatalf("metrics %+v %v", m, err)
				}
				return
			}
		case <-time.After(time.Until(deadline)):
			t.Fatal("no metrics push")
		}
	}
}

func TestUnackedEventsAreReplayedOnTheNextConnection(t *testing.T) {
	f := newFixture(t, nil)
	ctx := ctxT(t)
	a, _, err := f.dial(t, ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	a.hello(t, ctx)
	for i := 0; i < 5; i++ {
		emit(t, f.j, "x")
	}
	for i := 0; i < 5; i++ {
		a.nextEvent(t, ctx)
	}
	if err := protocol.MsgAck.Send(ctx, a.peer, protocol.Ack{Seq: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.j.LastAcked() == 2 })
	// The first connection ends; the next one ...
	_ = a.peer.Conn().Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, func() bool { return !f.srv.Stats().Connected })
	b, _, err := f.dial(t, ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	// ... gets everything not acknowledged, in order.
	if h := b.hello(t, ctx); h.LastAckedSeq != 2 {
		t.Fatalf("last acked %d, want 2", h.LastAckedSeq)
	}
	for _, want := range []uint64{3, 4, 5} {
		if e := b.nextEvent(t, ctx); e.Seq != want {
			t.Fatalf("replay: seq %d, want %d", e.Seq, want)
		}
	}
	if st := f.srv.Stats(); st.Accepted != 2 || !st.Connected {
		t.Fatalf("stats %+v", st)
	}
}

func TestDefaultHandlerSyncsEmptyStateAndRefusesTheRest(t *testing.T) {
	f := newFixture(t, nil)
	ctx := ctxT(t)
	c, _, err := f.dial(t, ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	c.hello(t, ctx)
	sr, err := protocol.CallSync.Do(ctx, c.peer, protocol.SyncRequest{Deployments: []protocol.DeploySpec{}})
	if err != nil {
		t.Fatal(err)
	}
	if sr.Deployments == nil || len(sr.Deployments) != 0 {
		t.Fatalf("sync reply %+v", sr)
	}
	for _, r := range []struct {
		typ  string
		body any
	}{
		{protocol.TypeDelete, protocol.DeleteRequest{DeploymentID: 1}},
		{protocol.TypeCancel, protocol.DeleteRequest{DeploymentID: 1}},
		{protocol.TypeLogsOpen, protocol.LogsOpen{DeploymentID: 1, Service: "api"}},
		{protocol.TypePluginsUpdate, protocol.PluginsUpdate{}},
	} {
		var re *protocol.RemoteError
		if err := c.peer.RoundTrip(ctx, r.typ, r.body, nil); !errors.As(err, &re) || re.Message != ErrNotImplemented.Error() {
			t.Fatalf("%s: %v", r.typ, err)
		}
	}
	// Invalid bodies and unknown types are refused with a reason.
	var re *protocol.RemoteError
	if _, err := protocol.CallDelete.Do(ctx, c.peer, protocol.DeleteRequest{}); !errors.As(err, &re) || !strings.Contains(re.Message, "deployment_id") {
		t.Fatalf("invalid delete: %v", err)
	}
	if err := c.peer.RoundTrip(ctx, "reboot", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Message, "unknown request type") {
		t.Fatalf("unknown type: %v", err)
	}
}

// recorder is a Handler that records requests and streams logs.
type recorder struct {
	DefaultHandler
	mu        sync.Mutex
	synced    []protocol.SyncRequest
	order     []string
	streamUp  chan struct{}
	stopped   chan struct{}
	deploying chan struct{} // closed when Deploy is entered
}

func (r *recorder) Sync(_ context.Context, req protocol.SyncRequest) (protocol.SyncReply, error) {
	r.mu.Lock()
	r.synced = append(r.synced, req)
	r.mu.Unlock()
	return protocol.SyncReply{Deployments: []protocol.DeploymentState{{DeploymentID: req.Deployments[0].DeploymentID, Status: protocol.StatusRunning}}}, nil
}

func (r *recorder) Deploy(_ context.Context, req protocol.DeployRequest) error {
	close(r.deploying)
	time.Sleep(20 * time.Millisecond) // a slow handler must not be overtaken
	r.mu.Lock()
	r.order = append(r.order, "deploy")
	r.mu.Unlock()
	return nil
}

func (r *recorder) Delete(context.Context, protocol.DeleteRequest) error {
	r.mu.Lock()
	r.order = append(r.order, "delete")
	r.mu.Unlock()
	return nil
}

func (r *recorder) Logs(ctx context.Context, req protocol.LogsOpen) (<-chan protocol.LogsData, error) {
	ch := make(chan protocol.LogsData)
	go func() {
		defer close(ch)
		defer close(r.stopped)
		ch <- protocol.LogsData{Stream: "stdout", Data: "line 1\n"}
		close(r.streamUp)
		<-ctx.Done()
	}()
	return ch, nil
}

func TestHandlerGetsRequestsInOrderAndLogStreamsStop(t *testing.T) {
	h := &recorder{streamUp: make(chan struct{}), stopped: make(chan struct{}), deploying: make(chan struct{})}
	f := newFixture(t, h)
	ctx := ctxT(t)
	c, _, err := f.dial(t, ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	c.hello(t, ctx)
	spec := protocol.DeploySpec{DeploymentID: 9, Name: "d", Graph: protocol.Graph{Nodes: []protocol.Node{{ID: "a", Kind: protocol.KindService}}},
		Services: map[string]protocol.ServiceImage{"a": {Image: "x"}}}
	sr, err := protocol.CallSync.Do(ctx, c.peer, protocol.SyncRequest{Deployments: []protocol.DeploySpec{spec}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Deployments) != 1 || sr.Deployments[0].DeploymentID != 9 || len(h.synced) != 1 || h.synced[0].Deployments[0].Name != "d" {
		t.Fatalf("sync: reply %+v, handler got %+v", sr, h.synced)
	}
	errc := make(chan error, 2)
	go func() { _, err := protocol.CallDeploy.Do(ctx, c.peer, protocol.DeployRequest{Spec: spec}); errc <- err }()
	// The delete is sent once the deploy has arrived (the order of two
	// goroutines' sends is not the point); it must not overtake the deploy's
	// slow handler.
	select {
	case <-h.deploying:
	case <-ctx.Done():
		t.Fatal("the deploy never reached the handler")
	}
	go func() {
		_, err := protocol.CallDelete.Do(ctx, c.peer, protocol.DeleteRequest{DeploymentID: 9})
		errc <- err
	}()
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(h.order, ",") != "deploy,delete" {
		t.Fatalf("handler saw %v, want deploy then delete", h.order)
	}

	stream := make(chan protocol.Envelope, 10)
	id, _, err := protocol.CallLogsOpen.Stream(ctx, c.peer, protocol.LogsOpen{DeploymentID: 9, Service: "a"}, stream)
	if err != nil {
		t.Fatal(err)
	}
	first := <-stream
	if d, _ := protocol.DecodeBody[protocol.LogsData](first); d.Data != "line 1\n" {
		t.Fatalf("first chunk %+v", first)
	}
	<-h.streamUp
	if err := protocol.MsgLogsClose.Send(ctx, c.peer, protocol.LogsClose{ID: id}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.stopped:
	case <-time.After(testWait):
		t.Fatal("logs.close did not stop the handler's stream")
	}
	select {
	case e := <-stream:
		if d, _ := protocol.DecodeBody[protocol.LogsData](e); !d.EOF {
			t.Fatalf("after close: %+v", e)
		}
	case <-time.After(testWait):
		t.Fatal("no EOF frame after the stream ended")
	}
}

// A control plane that stops answering (half-open link: no close, no
// reset) is dropped by the agent itself within its ping timeout.
func TestSilentControlPlaneIsDropped(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), journal.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	logs := &syncBuf{}
	srv := New(Options{Token: token, Version: "1.2.3", Journal: j, Host: fixedHost{},
		Log: zerolog.New(logs), MetricsInterval: 50 * time.Millisecond,
		// A ping timeout far above a busy machine's scheduling delays: a
		// live control plane must not be dropped because the test's
		// goroutines waited for a CPU.
		PingInterval: 100 * time.Millisecond, PingTimeout: 5 * time.Second})
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	hs.StartTLS()
	t.Cleanup(func() { srv.Close(); hs.Close() })
	f := &fixture{srv: srv, j: j, url: "wss" + strings.TrimPrefix(hs.URL, "https") + protocol.PathConnect, logs: logs}
	ctx := ctxT(t)

	c, _, err := f.dial(t, ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	c.hello(t, ctx)
	// Answering pings while it reads: the connection stays.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if !srv.Stats().Connected {
			t.Fatalf("a live control plane was dropped; log:\n%s", logs.String())
		}
		select {
		case <-c.frames:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	// Now the control plane goes silent: its read loop stops (as on a
	// frozen or cut link), so no pong is sent.
	c.freeze()
	start := time.Now()
	for srv.Stats().Connected {
		select {
		case <-ctx.Done():
			t.Fatalf("silent control plane never dropped; log:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("dropped %s after the control plane went silent", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "did not answer ping") {
		t.Fatalf("log does not say why:\n%s", logs.String())
	}
}
