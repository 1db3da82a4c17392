package channel

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nullops/nullops/agent/trust"
	"github.com/nullops/nullops/protocol"
)

// waitFor polls cond (a cheap in-memory check) until it holds or
// testWait passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", testWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// channelEvent waits for the next journaled channel event on c.
func (c *client) channelEvent(t *testing.T, ctx context.Context) protocol.ChannelEvent {
	t.Helper()
	for {
		e := c.nextEvent(t, ctx)
		if e.Type != protocol.TypeChannelEvent {
			continue
		}
		ev, err := protocol.DecodeBody[protocol.ChannelEvent](e)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
}

func refusal(t *testing.T, resp *http.Response, err error) protocol.Refused {
	t.Helper()
	if err == nil || resp == nil || resp.StatusCode != protocol.RefusedBusy {
		t.Fatalf("want 409, got err %v resp %+v", err, resp)
	}
	var r protocol.Refused
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("409 body %q: %v", b, err)
	}
	return r
}

// TestSecondConnectionIsRefusedWhileTheFirstIsHealthy: a caller holding the
// token cannot take a live channel over; the refusal is logged and
// journaled, so the legitimate control plane learns of it.
func TestSecondConnectionIsRefusedWhileTheFirstIsHealthy(t *testing.T) {
	// The agent pings often: a dial with a higher epoch (8) waits for the
	// current connection to fall silent, and is refused as soon as a pong
	// shows it is alive.
	f := newFixture(t, nil, func(o *Options) { o.PingInterval = 200 * time.Millisecond })
	ctx := ctxT(t)
	a, _, err := f.dialEpoch(t, ctx, token, "7")
	if err != nil {
		t.Fatal(err)
	}
	a.hello(t, ctx)
	_, resp, err := f.dialEpoch(t, ctx, token, "8")
	r := refusal(t, resp, err)
	if r.Epoch != 7 || !strings.Contains(r.Error, "healthy control-plane connection") {
		t.Fatalf("refusal %+v", r)
	}
	ev := a.channelEvent(t, ctx)
	if ev.Kind != protocol.ChannelRefused || ev.Epoch != 8 || ev.Remote == "" {
		t.Fatalf("journaled %+v", ev)
	}
	// The first connection still works.
	if h := a.hello(t, ctx); h.InstanceID == "" {
		t.Fatal("first connection broken")
	}
	if st := f.srv.Stats(); st.Accepted != 1 || st.Refused != 1 || !st.Healthy {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(f.logs.String(), "control-plane connection refused: 409") {
		t.Fatalf("refusal not logged:\n%s", f.logs.String())
	}
}

// TestSilentConnectionIsReplacedAndStaleEpochsRefused: a connection from
// which nothing arrived for the health window is replaced (logged and
// journaled); an epoch below the highest accepted is refused.
func TestSilentConnectionIsReplacedAndStaleEpochsRefused(t *testing.T) {
	f := newFixture(t, nil, func(o *Options) { o.HealthWindow = 300 * time.Millisecond })
	ctx := ctxT(t)
	a, _, err := f.dialEpoch(t, ctx, token, "5")
	if err != nil {
		t.Fatal(err)
	}
	a.hello(t, ctx)
	waitFor(t, func() bool { return !f.srv.Stats().Healthy })
	for _, ep := range []string{"", "4"} {
		_, resp, err := f.dialEpoch(t, ctx, token, ep)
		if r := refusal(t, resp, err); r.Epoch != 5 || !strings.Contains(r.Error, "stale connection epoch") {
			t.Fatalf("epoch %q: refusal %+v", ep, r)
		}
	}
	b, _, err := f.dialEpoch(t, ctx, token, "6")
	if err != nil {
		t.Fatalf("a newer connection must replace a silent one: %v", err)
	}
	select {
	case <-a.peer.Done():
		if st := websocket.CloseStatus(a.peer.Err()); st != websocket.StatusPolicyViolation {
			t.Fatalf("silent connection closed with %v", a.peer.Err())
		}
	case <-ctx.Done():
		t.Fatal("the silent connection was not closed")
	}
	b.hello(t, ctx)
	var kinds []string
	for len(kinds) < 2 {
		kinds = append(kinds, b.channelEvent(t, ctx).Kind)
	}
	if strings.Join(kinds, ",") != "refused,replaced" {
		t.Fatalf("journaled channel events %v, want refused (coalesced), replaced", kinds)
	}
	if !strings.Contains(f.logs.String(), "unhealthy control-plane connection replaced") {
		t.Fatal("replacement not logged")
	}
}

// TestEpochFarAheadIsRefused: an epoch more than protocol.MaxEpochStep
// above the highest accepted is refused and not recorded, so a caller
// holding the token cannot move the agent's epoch out of the server's
// reach; the server's next epoch still connects.
func TestEpochFarAheadIsRefused(t *testing.T) {
	f := newFixture(t, nil, func(o *Options) { o.HealthWindow = 300 * time.Millisecond })
	ctx := ctxT(t)
	a, _, err := f.dialEpoch(t, ctx, token, "5")
	if err != nil {
		t.Fatal(err)
	}
	a.hello(t, ctx)
	waitFor(t, func() bool { return !f.srv.Stats().Healthy })
	for _, ep := range []uint64{5 + protocol.MaxEpochStep + 1, 1 << 62, 1<<64 - 1} {
		_, resp, err := f.dialEpoch(t, ctx, token, strconv.FormatUint(ep, 10))
		if r := refusal(t, resp, err); r.Epoch != 5 || !strings.Contains(r.Error, "too far ahead") {
			t.Fatalf("epoch %d: refusal %+v", ep, r)
		}
	}
	b, _, err := f.dialEpoch(t, ctx, token, strconv.FormatUint(5+protocol.MaxEpochStep, 10))
	if err != nil {
		t.Fatalf("an epoch MaxEpochStep ahead must still replace a silent connection: %v", err)
	}
	b.hello(t, ctx)
}

// TestTokenRotationAndRevocationPersist: after token.rotate the old token is
// refused at once and after a restart with it; after token.revoke every
// token is refused until the agent starts with another token.
func TestTokenRotationAndRevocationPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), trust.FileName)
	tr, err := trust.Open(path, token)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil, func(o *Options) { o.Trust = tr })
	ctx := ctxT(t)
	a, _, err := f.dial(t, ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	a.hello(t, ctx)
	const newTok = "nullops-node_the-new-token-0123456789"
	if _, err := protocol.CallTokenRotate.Do(ctx, a.peer, protocol.TokenRotate{Verifier: "nope"}); err == nil {
		t.Fatal("an invalid verifier was accepted")
	}
	if _, err := protocol.CallTokenRotate.Do(ctx, a.peer, protocol.TokenRotate{Verifier: protocol.TokenVerifier(newTok), Generation: 2}); err != nil {
		t.Fatal(err)
	}
	if ev := a.channelEvent(t, ctx); ev.Kind != protocol.ChannelTokenRotated {
		t.Fatalf("journaled %+v", ev)
	}
	_ = a.peer.Conn().Close(websocket.StatusNormalClosure, "redial")
	waitFor(t, func() bool { return !f.srv.Stats().Connected })
	if _, resp, err := f.dial(t, ctx, token); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old token after rotation: %v %+v", err, resp)
	}
	b, _, err := f.dial(t, ctx, newTok)
	if err != nil {
		t.Fatalf("new token refused: %v", err)
	}
	b.hello(t, ctx)
	raw, _ := readFile(path)
	if strings.Contains(raw, newTok) || strings.Contains(raw, token) {
		t.Fatal("the trust record holds a token")
	}
	// A restart with the old token in the environment keeps the rotation.
	re, err := trust.Open(path, token)
	if err != nil {
		t.Fatal(err)
	}
	if re.Check(token) == nil || re.Check(newTok) != nil {
		t.Fatal("rotation lost on restart")
	}

	if _, err := protocol.CallTokenRevoke.Do(ctx, b.peer, protocol.TokenRevoke{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.peer.Done():
	case <-ctx.Done():
		t.Fatal("revocation did not close the connection")
	}
	for _, tok := range []string{token, newTok} {
		_, resp, err := f.dial(t, ctx, tok)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token after revocation: %v %+v", err, resp)
		}
	}
	for _, tok := range []string{token, newTok} {
		re, err := trust.Open(path, tok)
		if err != nil {
			t.Fatal(err)
		}
		if re.Check(tok) == nil || re.Check(newTok) == nil {
			t.Fatalf("revocation lost on a restart with a known token")
		}
	}
	const third = "nullops-node_a-third-token-0123456789"
	re, err = trust.Open(path, third)
	if err != nil {
		t.Fatal(err)
	}
	if re.Check(third) != nil || re.Check(newTok) == nil {
		t.Fatal("starting with a new token must accept it, and only it")
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

// TestNewerEpochTakesOverWhenTheCurrentConnectionFallsSilent: a dial with a
// higher epoch arriving while the current connection is still healthy is
// not refused at once: it waits, and replaces the connection once that
// stays silent for the window its control plane announced (a server
// replica that froze and lost its lease), within one dial.
func TestNewerEpochTakesOverWhenTheCurrentConnectionFallsSilent(t *testing.T) {
	f := newFixture(t, nil)
	ctx := ctxT(t)
	a, _, err := f.dialEpoch(t, ctx, token, "5")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.CallHello.Do(ctx, a.peer, protocol.HelloRequest{ServerVersion: "1.2.3", ProtocolVersion: protocol.Version,
		LivenessMs: 1500}); err != nil {
		t.Fatal(err)
	}
	a.freeze()
	if !f.srv.Stats().Healthy {
		t.Fatal("the first connection is unhealthy right after hello")
	}
	start := time.Now()
	b, _, err := f.dialEpoch(t, ctx, token, "6")
	if err != nil {
		t.Fatalf("the newer epoch was refused instead of waiting for the silent connection: %v", err)
	}
	t.Logf("took over %s after the dial", time.Since(start))
	b.hello(t, ctx)
	if st := f.srv.Stats(); st.Accepted != 2 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
}
