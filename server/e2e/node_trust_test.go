package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// trustWorld is a server with one environment and one node whose real
// agent process is online.
func trustWorld(t *testing.T) (*world, *agent, int64, string) {
	t.Helper()
	w := &world{unique: newUnique()}
	w.srv = startServer(t)
	w.admin = login(t, w.srv.URL, adminUser, adminPass)
	w.envID = idOf(t, w.admin.post("/environments", map[string]any{"name": "qa", "base_domain": "e2e.test"}).want(t, 201))
	a, id := w.addNode(t, w.envID, "trust", 0, 0)
	return w, a, id, a.token
}

// nodeTrust is what the tests read of a node.
type nodeTrust struct {
	Status          string `json:"status"`
	Reason          string `json:"status_reason"`
	Connected       bool   `json:"connected"`
	RotationPending bool   `json:"token_rotation_pending"`
	RevokePending   bool   `json:"token_revoke_pending"`
}

// waitNodeTrust polls the node until ok holds (2 minutes).
func (w *world) waitNodeTrust(t *testing.T, id int64, what string, ok func(nodeTrust) bool) nodeTrust {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n nodeTrust
		w.admin.get(fmt.Sprintf("/nodes/%d", id)).want(t, 200).decode(t, &n)
		if ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s not reached within 2 minutes: %+v", id, what, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func online(n nodeTrust) bool { return n.Status == "online" && n.Connected }

// rotate rotates the node's token through the API and returns the new one.
func (w *world) rotate(t *testing.T, id int64) (string, nodeTrust) {
	t.Helper()
	var out struct {
		Node  nodeTrust `json:"node"`
		Token string    `json:"token"`
	}
	w.admin.post(fmt.Sprintf("/nodes/%d/rotate-token", id), nil).want(t, 200).decode(t, &out)
	if out.Token == "" {
		t.Fatal("rotate-token returned no token")
	}
	return out.Token, out.Node
}

// knock dials the agent directly as another caller would: TLS without
// pinning, the given token and epoch (0 = no epoch header). It returns the
// HTTP status of the upgrade (101 when accepted) and the connection.
func knock(t *testing.T, port int, token string, epoch uint64) (int, *websocket.Conn) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the caller under test does not pin
	hdr := http.Header{"Authorization": []string{"Bearer " + token}}
	if epoch > 0 {
		hdr.Set(protocol.HeaderEpoch, strconv.FormatUint(epoch, 10))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d%s", port, protocol.PathConnect),
		&websocket.DialOptions{HTTPClient: hc, HTTPHeader: hdr})
	if err == nil {
		t.Cleanup(func() { _ = conn.CloseNow() })
		return http.StatusSwitchingProtocols, conn
	}
	if resp == nil {
		t.Fatalf("dial agent: %v", err)
	}
	return resp.StatusCode, nil
}

// wantKnock asserts the agent's answer to token.
func wantKnock(t *testing.T, port int, token, what string, want int) {
	t.Helper()
	if got, _ := knock(t, port, token, 0); got != want {
		t.Fatalf("%s: the agent answered %d, want %d", what, got, want)
	}
}

type nodeEvent struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Remote  string `json:"remote"`
	Source  string `json:"source"`
}

// waitNodeEvent waits until the node has an event of kind from source.
func (w *world) waitNodeEvent(t *testing.T, id int64, kind, source string) nodeEvent {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var page struct {
			Items []nodeEvent `json:"items"`
		}
		w.admin.get(fmt.Sprintf("/nodes/%d/events?per_page=200", id)).want(t, 200).decode(t, &page)
		for _, e := range page.Items {
			if e.Kind == kind && e.Source == source {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d has no %s event from the %s within 2 minutes: %+v", id, kind, source, page.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantAudit asserts the audit log has an entry of action on the node.
func (w *world) wantAudit(t *testing.T, id int64, action string) {
	t.Helper()
	var page struct {
		Items []struct {
			Action   string `json:"action"`
			TargetID string `json:"target_id"`
		} `json:"items"`
	}
	w.admin.get("/audit?action="+action+"&target_type=node&target_id="+strconv.FormatInt(id, 10)).want(t, 200).decode(t, &page)
	if len(page.Items) == 0 {
		t.Fatalf("no %s audit entry for node %d", action, id)
	}
}

// TestNodeTokenRotationAndRevocationReachTheAgent: rotating a node's token
// makes the running agent refuse the old one at once (and after a restart
// with it); a rotation while the agent is offline completes on its next
// connection and the node says so meanwhile; a revocation makes the agent
// refuse every token until it is started with a new one.
func TestNodeTokenRotationAndRevocationReachTheAgent(t *testing.T) {
	t.Parallel()
	w, a, id, tok1 := trustWorld(t)

	// Online rotation.
	tok2, _ := w.rotate(t, id)
	w.waitNodeTrust(t, id, "online with the new token", func(n nodeTrust) bool { return online(n) && !n.RotationPending })
	wantKnock(t, a.port, tok1, "old token after an online rotation", http.StatusUnauthorized)
	// The new token is accepted (409: the server's healthy connection holds the agent).
	wantKnock(t, a.port, tok2, "new token while the server is connected", http.StatusConflict)
	w.waitNodeEvent(t, id, protocol.ChannelTokenRotated, "agent")
	w.waitNodeEvent(t, id, "token_rotated", "server")
	w.wantAudit(t, id, "node.token_rotation_completed")

	// The agent restarted with the old token in its environment keeps
	// refusing it, and the server reconnects with the new one.
	a.kill()
	w.waitNodeTrust(t, id, "offline", func(n nodeTrust) bool { return n.Status == "offline" })
	a.start()
	w.waitNodeTrust(t, id, "online after a restart with the old token", online)
	wantKnock(t, a.port, tok1, "old token after a restart with it", http.StatusUnauthorized)

	// Offline rotation: pending until the agent connects again.
	a.kill()
	w.waitNodeTrust(t, id, "offline", func(n nodeTrust) bool { return n.Status == "offline" })
	tok3, n := w.rotate(t, id)
	if !n.RotationPending {
		t.Fatalf("rotation while offline: the node does not say it is pending: %+v", n)
	}
	if n = w.waitNodeTrust(t, id, "pending", func(n nodeTrust) bool { return true }); !n.RotationPending {
		t.Fatalf("GET node after an offline rotation: %+v", n)
	}
	a.start() // still with tok1 in its environment
	w.waitNodeTrust(t, id, "online with the rotation completed", func(n nodeTrust) bool { return online(n) && !n.RotationPending })
	wantKnock(t, a.port, tok2, "previous token after an offline rotation", http.StatusUnauthorized)
	wantKnock(t, a.port, tok3, "new token after an offline rotation", http.StatusConflict)

	// Revocation while online.
	w.admin.post(fmt.Sprintf("/nodes/%d/revoke", id), nil).want(t, 200)
	w.waitNodeTrust(t, id, "revoked and told", func(n nodeTrust) bool { return n.Status == "revoked" && !n.RevokePending })
	w.waitNodeEvent(t, id, "token_revoked", "server")
	w.wantAudit(t, id, "node.token_revocation_completed")
	for i, tok := range []string{tok1, tok2, tok3} {
		wantKnock(t, a.port, tok, fmt.Sprintf("token %d after revocation", i+1), http.StatusUnauthorized)
	}
	a.kill()
	a.start() // a restart with a known token keeps the revocation
	for i, tok := range []string{tok1, tok3} {
		waitKnock(t, a.port, tok, fmt.Sprintf("token %d after revocation and restart", i+1), http.StatusUnauthorized)
	}

	// A new token and an agent started with it: online again.
	tok4, _ := w.rotate(t, id)
	a.kill()
	a.token = tok4
	a.start()
	w.waitNodeTrust(t, id, "online with a token issued after the revocation", online)
	wantKnock(t, a.port, tok3, "revoked token after the agent got a new one", http.StatusUnauthorized)
	// The agent's own record of the revocation arrives once it is back.
	w.waitNodeEvent(t, id, protocol.ChannelTokenRevoked, "agent")

	// Revocation while the agent is offline: pending, delivered when it
	// is back.
	a.kill()
	w.waitNodeTrust(t, id, "offline", func(n nodeTrust) bool { return n.Status == "offline" })
	var rn nodeTrust
	w.admin.post(fmt.Sprintf("/nodes/%d/revoke", id), nil).want(t, 200).decode(t, &rn)
	if !rn.RevokePending {
		t.Fatalf("revocation while offline: the node does not say it is pending: %+v", rn)
	}
	a.start()
	w.waitNodeTrust(t, id, "revocation delivered", func(n nodeTrust) bool { return n.Status == "revoked" && !n.RevokePending })
	waitKnock(t, a.port, tok4, "token after an offline revocation", http.StatusUnauthorized)
}

// waitKnock retries knock until the agent listens (after a restart).
func waitKnock(t *testing.T, port int, token, what string, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, _ := knockErr(port, token)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the agent answered %d, want %d", what, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// knockErr is knock without failing the test when the agent is not
// listening (status 0).
func knockErr(port int, token string) (int, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test caller
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d%s", port, protocol.PathConnect),
		&websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"Authorization": []string{"Bearer " + token}}})
	if err == nil {
		_ = conn.CloseNow()
		return http.StatusSwitchingProtocols, nil
	}
	if resp == nil {
		return 0, err
	}
	return resp.StatusCode, err
}

// TestSecondCallerCannotTakeOverTheAgent: while the server's connection is
// healthy, another caller with the node token is refused, and the refusal
// shows on the node (event + audit). The other way round: a caller holding
// the agent makes the agent refuse the server, which the node shows too.
func TestSecondCallerCannotTakeOverTheAgent(t *testing.T) {
	t.Parallel()
	w, a, id, tok := trustWorld(t)

	code, _ := knock(t, a.port, tok, 1<<20)
	if code != http.StatusConflict {
		t.Fatalf("a second caller with the token (and a much newer epoch) got %d, want 409", code)
	}
	ev := w.waitNodeEvent(t, id, protocol.ChannelRefused, "agent")
	if ev.Remote == "" || !strings.Contains(ev.Message, "healthy control-plane connection") {
		t.Fatalf("refused event %+v", ev)
	}
	w.wantAudit(t, id, "node.connection_refused")
	if n := w.waitNodeTrust(t, id, "online", online); n.Status != "online" {
		t.Fatal("unreachable")
	}

	// The server lets go (the node's address is changed to one where no
	// agent listens); another caller takes the agent and keeps its
	// connection alive.
	w.admin.do("PATCH", fmt.Sprintf("/nodes/%d", id), map[string]any{"port": testutil.FreePort(t)}).want(t, 200)
	w.waitNodeTrust(t, id, "offline", func(n nodeTrust) bool { return n.Status == "offline" })
	var conn *websocket.Conn
	deadline := time.Now().Add(2 * time.Minute)
	for conn == nil {
		code, conn = knock(t, a.port, tok, 1<<20)
		if conn == nil && time.Now().After(deadline) {
			t.Fatalf("the agent did not take a connection after the server let go: %d", code)
		}
		if conn == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	ictx, icancel := context.WithCancel(context.Background())
	defer icancel()
	var seen atomic.Uint64 // the highest journal seq the agent sent the intruder
	intruder := protocol.NewPeer(conn, "x", func(_ context.Context, _ *protocol.Peer, e protocol.Envelope) {
		if e.Seq > seen.Load() {
			seen.Store(e.Seq)
		}
	})
	go intruder.Run(ictx) //nolint:errcheck
	_, err := protocol.CallHello.Do(ictx, intruder, protocol.HelloRequest{ProtocolVersion: protocol.Version, LivenessMs: 600000})
	if err != nil {
		t.Fatalf("intruder hello: %v", err)
	}

	w.admin.do("PATCH", fmt.Sprintf("/nodes/%d", id), map[string]any{"port": a.port}).want(t, 200)
	n := w.waitNodeTrust(t, id, "refused by the agent", func(n nodeTrust) bool {
		return n.Status == "offline" && strings.Contains(n.Reason, "refused this server's connection")
	})
	t.Logf("node while another caller holds the agent: %s", n.Reason)
	w.waitNodeEvent(t, id, "refused_by_agent", "server")
	w.wantAudit(t, id, "node.connection_refused_by_agent")

	// What the agent journals meanwhile (here a wrong token's refusal)
	// goes to the intruder, which acknowledges it: the agent drops it, and
	// the server, which never saw it, says so when it gets the agent back.
	if code, _ := knockErr(a.port, "nullops-node_not-the-token-0123456789abcdef"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token got %d, want 401", code)
	}
	for deadline := time.Now().Add(time.Minute); seen.Load() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the agent journaled nothing to the intruder after a wrong token")
		}
	}
	if err := protocol.MsgAck.Send(ictx, intruder, protocol.Ack{Seq: seen.Load()}); err != nil {
		t.Fatalf("intruder ack: %v", err)
	}

	// The intruder leaves: the server gets the agent back, and hears from
	// the agent about the connections it refused meanwhile.
	_ = conn.Close(websocket.StatusNormalClosure, "bye")
	w.waitNodeTrust(t, id, "online again", online)
	ev = w.waitNodeEvent(t, id, "events_acked_elsewhere", "server")
	if !strings.Contains(ev.Message, "acknowledged by another connection") {
		t.Errorf("events_acked_elsewhere event %+v", ev)
	}
	w.wantAudit(t, id, "node.events_acked_elsewhere")
	t.Logf("acknowledged elsewhere: %s", ev.Message)
	var page struct {
		Items []nodeEvent `json:"items"`
	}
	w.admin.get(fmt.Sprintf("/nodes/%d/events?per_page=200", id)).want(t, 200).decode(t, &page)
	b, _ := json.Marshal(page.Items)
	t.Logf("node events: %s", b)

	// A caller holding the agent that falls silent is replaced by the
	// server's next connection (a higher epoch), and the replacement shows
	// on the node. The caller presents the highest epoch the agent
	// accepted (every refusal says it), connects through a link the test
	// can cut, announces a 1 s liveness window and then goes silent.
	epoch := agentEpoch(t, a.port, tok)
	w.admin.do("PATCH", fmt.Sprintf("/nodes/%d", id), map[string]any{"port": testutil.FreePort(t)}).want(t, 200)
	w.waitNodeTrust(t, id, "offline", func(n nodeTrust) bool { return n.Status == "offline" })
	link := testutil.StartLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", a.port))
	var silent *websocket.Conn
	deadline = time.Now().Add(2 * time.Minute)
	for silent == nil {
		code, silent = knock(t, link.Port, tok, epoch)
		if silent == nil && time.Now().After(deadline) {
			t.Fatalf("the agent did not take the second caller's connection: %d", code)
		}
		if silent == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	second := protocol.NewPeer(silent, "y", func(context.Context, *protocol.Peer, protocol.Envelope) {})
	go second.Run(sctx) //nolint:errcheck
	if _, err := protocol.CallHello.Do(sctx, second, protocol.HelloRequest{ProtocolVersion: protocol.Version, LivenessMs: 1000}); err != nil {
		t.Fatalf("second caller hello: %v", err)
	}
	link.Cut(t)
	w.admin.do("PATCH", fmt.Sprintf("/nodes/%d", id), map[string]any{"port": a.port}).want(t, 200)
	w.waitNodeTrust(t, id, "online, the silent caller replaced", online)
	ev = w.waitNodeEvent(t, id, protocol.ChannelReplaced, "agent")
	if !strings.Contains(ev.Message, "was silent for") {
		t.Errorf("replaced event %+v", ev)
	}
	w.wantAudit(t, id, "node.connection_replaced")
	t.Logf("replaced: %+v", ev)
}

// agentEpoch is the highest connection epoch the agent accepted, as its
// refusal of a connection without an epoch says (a healthy connection
// holds it, or the missing epoch is stale).
func agentEpoch(t *testing.T, port int, token string) uint64 {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test caller
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d%s", port, protocol.PathConnect),
		&websocket.DialOptions{HTTPClient: hc, HTTPHeader: http.Header{"Authorization": []string{"Bearer " + token}}})
	if err == nil {
		_ = conn.CloseNow()
		t.Fatal("the agent accepted a second connection while the server holds it")
	}
	if resp == nil || resp.StatusCode != protocol.RefusedBusy {
		t.Fatalf("epoch probe: %v %+v", err, resp)
	}
	var r protocol.Refused
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Epoch == 0 {
		t.Fatalf("refusal body: %v %+v", err, r)
	}
	return r.Epoch
}
