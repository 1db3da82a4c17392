package agents

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// Forwarding node-bound calls between replicas (docs/architecture.md,
// "Replicas and node leases"). Only the replica holding a node's lease is
// connected to its agent; a call, a log stream or an admin refresh for that
// node on another replica is forwarded to the owner's internal endpoint
// (PathForward at its advertised URL).
//
// Every request, reply and stream frame is sealed with AES-256-GCM under a
// key derived from the server's secret key (ForwardKey), which every
// replica has and nobody else: that authenticates the sender and keeps
// the bodies (deploy specs carry secret values) confidential on the
// internal network, whatever its transport. A request carries its time and
// is refused outside ±forwardSkew or when its nonce was seen before
// (replay); replies and frames are bound to the request's nonce. The
// endpoint answers anything it cannot open with a bare 401.

// PathForward is the internal endpoint other replicas forward to.
const PathForward = "/internal/v1/forward"

// HeaderReplica names the forwarding replica (informational; the seal is
// the authentication).
const HeaderReplica = "X-Nullops-Replica"

const (
	forwardSkew    = 2 * time.Minute
	forwardMaxBody = 64 << 20
	forwardMaxRep  = 64 << 20
)

// ForwardKey derives the replicas' forwarding key from the server's secret
// key (base64 of 32 bytes, secret.key); nil when it is not valid.
func ForwardKey(secretKey string) []byte {
	raw, err := base64.StdEncoding.DecodeString(secretKey)
	if err != nil || len(raw) == 0 {
		return nil
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("nullops/replica-forwarding/v1"))
	return mac.Sum(nil)
}

// forwardRequest is what a replica asks of a node's owner.
type forwardRequest struct {
	Op     string             `json:"op"` // call, logs, refresh
	From   string             `json:"from"`
	Node   int64              `json:"node"`
	Type   string             `json:"type,omitempty"`
	Body   json.RawMessage    `json:"body,omitempty"`
	Logs   *protocol.LogsOpen `json:"logs,omitempty"`
	Buffer int                `json:"buffer,omitempty"`
	At     time.Time          `json:"at"`
	// TimeoutMs is what was left of the caller's deadline (0: none; the
	// owner then applies protocol.DefaultRequestTimeout).
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
}

// forwardReply answers a call (or opens a stream).
type forwardReply struct {
	Body    json.RawMessage `json:"body,omitempty"`
	Error   string          `json:"error,omitempty"`
	Kind    string          `json:"kind,omitempty"` // not_connected, remote, failed
	Replica string          `json:"replica"`
}

const (
	fwdNotConnected = "not_connected"
	fwdRemote       = "remote"
	fwdFailed       = "failed"
)

type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("forwarding key must be 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &sealer{g}, nil
}

// seal returns nonce || ciphertext of plain, bound to ad.
func (s *sealer) seal(plain []byte, ad string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(ad))
}

func (s *sealer) open(sealed []byte, ad string) (nonce, plain []byte, err error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, nil, errors.New("short")
	}
	nonce = sealed[:ns]
	plain, err = s.aead.Open(nil, nonce, sealed[ns:], []byte(ad))
	return nonce, plain, err
}

const (
	adRequest = "nullops-forward-request"
	adReply   = "nullops-forward-reply:"
)

// replayCache remembers the nonces of accepted requests within the skew.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (c *replayCache) fresh(nonce []byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	for k, exp := range c.seen {
		if now.After(exp) {
			delete(c.seen, k)
		}
	}
	k := string(nonce)
	if _, dup := c.seen[k]; dup {
		return false
	}
	c.seen[k] = now.Add(2 * forwardSkew)
	return true
}

// forwarder is the Manager's forwarding state.
type forwarder struct {
	once   sync.Once
	sealer *sealer
	err    error
	replay replayCache

	closeOnce sync.Once
	closing   chan struct{} // closed by CloseForwardedStreams (made by New)
}

// CloseForwardedStreams ends the log streams this replica serves to the
// others (at shutdown, before the HTTP server waits for its requests: a
// followed log would hold it up; the other replica's reader sees the
// stream end and its client reconnects).
func (m *Manager) CloseForwardedStreams() {
	m.forward.closeOnce.Do(func() { close(m.forward.closing) })
}

func (m *Manager) fwd() (*sealer, error) {
	m.forward.once.Do(func() {
		m.forward.sealer, m.forward.err = newSealer(m.o.ForwardKey)
	})
	return m.forward.sealer, m.forward.err
}

// post sends a sealed request to the node's owner and returns the open
// response (the caller reads and closes its body) and the request nonce.
func (m *Manager) post(ctx context.Context, nodeID int64, req forwardRequest) (*http.Response, []byte, store.Replica, error) {
	s, err := m.fwd()
	if err != nil {
		return nil, nil, store.Replica{}, err
	}
	owner, err := m.o.Store.GetNodeOwner(ctx, nodeID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && owner.Replica.ID == m.o.ReplicaID) {
		return nil, nil, store.Replica{}, fmt.Errorf("node %d: %w", nodeID, ErrNotConnected)
	}
	if err != nil {
		return nil, nil, store.Replica{}, err
	}
	if owner.Replica.APIURL == "" {
		return nil, nil, owner.Replica, fmt.Errorf("node %d: replica %s advertises no URL: %w", nodeID, owner.Replica.ID, ErrNotConnected)
	}
	req.From, req.Node, req.At = m.o.ReplicaID, nodeID, time.Now().UTC()
	plain, err := json.Marshal(req)
	if err != nil {
		return nil, nil, owner.Replica, err
	}
	sealed := s.seal(plain, adRequest)
	nonce := sealed[:s.aead.NonceSize()]
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(owner.Replica.APIURL, "/")+PathForward, bytes.NewReader(sealed))
	if err != nil {
		return nil, nil, owner.Replica, err
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.Header.Set(HeaderReplica, m.o.ReplicaID)
	resp, err := m.o.ForwardClient.Do(hr)
	if err != nil {
		return nil, nil, owner.Replica, fmt.Errorf("node %d: forward to replica %s: %w", nodeID, owner.Replica.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, nil, owner.Replica, fmt.Errorf("node %d: replica %s answered HTTP %d to a forwarded call", nodeID, owner.Replica.ID, resp.StatusCode)
	}
	return resp, nonce, owner.Replica, nil
}

// replyError turns a forwarded reply's error back into the kind the local
// call would have returned.
func replyError(nodeID int64, typ string, rep forwardReply) error {
	switch rep.Kind {
	case "":
		return nil
	case fwdNotConnected:
		return fmt.Errorf("node %d: %w", nodeID, ErrNotConnected)
	case fwdRemote:
		return fmt.Errorf("node %d: %s: %w", nodeID, typ, &protocol.RemoteError{Message: rep.Error})
	}
	return fmt.Errorf("node %d: %s (via replica %s): %s", nodeID, typ, rep.Replica, rep.Error)
}

// forwardCall runs a request on the node's owner replica.
func (m *Manager) forwardCall(ctx context.Context, nodeID int64, typ string, body, out any) error {
	var timeoutMs int64
	if dl, ok := ctx.Deadline(); ok {
		// The owner's request ends with the caller's deadline.
		timeoutMs = max(time.Until(dl).Milliseconds(), 1)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, protocol.DefaultRequestTimeout+5*time.Second)
		defer cancel()
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("node %d: %s: %w", nodeID, typ, err)
	}
	resp, nonce, _, err := m.post(ctx, nodeID, forwardRequest{Op: "call", Type: typ, Body: raw, TimeoutMs: timeoutMs})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rep, err := m.readReply(resp.Body, nonce)
	if err != nil {
		return fmt.Errorf("node %d: %s: forwarded reply: %w", nodeID, typ, err)
	}
	if err := replyError(nodeID, typ, rep); err != nil {
		return err
	}
	if out != nil && len(rep.Body) > 0 {
		if err := json.Unmarshal(rep.Body, out); err != nil {
			return fmt.Errorf("node %d: %s: decode forwarded reply: %w", nodeID, typ, err)
		}
	}
	return nil
}

// readReply reads one length-prefixed sealed frame bound to nonce.
func (m *Manager) readFrame(r io.Reader, nonce []byte) ([]byte, error) {
	s, err := m.fwd()
	if err != nil {
		return nil, err
	}
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	if n > forwardMaxRep {
		return nil, errors.New("frame too large")
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	_, plain, err := s.open(buf, adReply+hex.EncodeToString(nonce))
	if err != nil {
		return nil, errors.New("frame not sealed with the replicas' key")
	}
	return plain, nil
}

func (m *Manager) readReply(r io.Reader, nonce []byte) (forwardReply, error) {
	var rep forwardReply
	plain, err := m.readFrame(r, nonce)
	if err != nil {
		return rep, err
	}
	err = json.Unmarshal(plain, &rep)
	return rep, err
}

// forwardLogs opens a log stream on the node's owner replica; its frames
// arrive here as they come.
func (m *Manager) forwardLogs(ctx context.Context, nodeID int64, req protocol.LogsOpen, buffer int) (*Stream, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	openCtx, openCancel := context.WithTimeout(ctx, protocol.DefaultRequestTimeout+5*time.Second)
	defer openCancel()
	stopOpen := context.AfterFunc(openCtx, func() {
		if ctx.Err() != nil {
			cancel()
		}
	})
	defer stopOpen()
	resp, nonce, _, err := m.post(sctx, nodeID, forwardRequest{Op: "logs", Logs: &req, Buffer: buffer})
	if err != nil {
		cancel()
		return nil, err
	}
	br := bufio.NewReader(resp.Body)
	rep, err := m.readReply(br, nonce)
	if err == nil {
		err = replyError(nodeID, protocol.TypeLogsOpen, rep)
	}
	if err != nil {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	ch := make(chan protocol.Envelope, buffer)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		for {
			plain, err := m.readFrame(br, nonce)
			if err != nil {
				return
			}
			var e protocol.Envelope
			if json.Unmarshal(plain, &e) != nil {
				return
			}
			select {
			case ch <- e:
			default: // a slow reader loses frames, as with a local stream
			}
		}
	}()
	var once sync.Once
	return &Stream{C: ch, stop: func() { once.Do(func() { cancel(); resp.Body.Close() }) }}, nil
}

// forwardRefresh tells the node's owner to act on an admin change.
func (m *Manager) forwardRefresh(ctx context.Context, nodeID int64) {
	if m.o.ForwardKey == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, nonce, owner, err := m.post(ctx, nodeID, forwardRequest{Op: "refresh"})
	if err != nil {
		if !errors.Is(err, ErrNotConnected) {
			m.o.Log.Warn().Err(err).Int64("node_id", nodeID).Msg("refresh not forwarded to the node's replica (it rereads the node within agents.rescaninterval)")
		}
		return
	}
	defer resp.Body.Close()
	if _, err := m.readReply(resp.Body, nonce); err != nil {
		m.o.Log.Warn().Err(err).Int64("node_id", nodeID).Str("replica", owner.ID).Msg("forwarded refresh")
	}
}

// ForwardHandler serves PathForward: the calls other replicas forward for
// the nodes this one holds. Mount it on the server's listener; without a
// ForwardKey it answers 404.
func (m *Manager) ForwardHandler() http.Handler {
	return http.HandlerFunc(m.serveForward)
}

func (m *Manager) serveForward(w http.ResponseWriter, r *http.Request) {
	s, err := m.fwd()
	if err != nil || m.o.ForwardKey == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sealed, err := io.ReadAll(http.MaxBytesReader(w, r.Body, forwardMaxBody))
	if err != nil {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	nonce, plain, err := s.open(sealed, adRequest)
	var req forwardRequest
	if err == nil {
		err = json.Unmarshal(plain, &req)
	}
	now := time.Now()
	if err != nil || req.At.Before(now.Add(-forwardSkew)) || req.At.After(now.Add(forwardSkew)) || !m.forward.replay.fresh(nonce, now) {
		m.o.Log.Warn().Str("remote", r.RemoteAddr).Msg("forwarded call refused: not sealed with the replicas' key, too old or replayed")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	ad := adReply + hex.EncodeToString(nonce)
	write := func(v any) error {
		plain, err := json.Marshal(v)
		if err != nil {
			return err
		}
		frame := s.seal(plain, ad)
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(frame)))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		_, err = w.Write(frame)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return err
	}
	rep := forwardReply{Replica: m.o.ReplicaID}
	fail := func(err error) {
		rep.Error = err.Error()
		var re *protocol.RemoteError
		switch {
		case errors.Is(err, ErrNotConnected):
			rep.Kind = fwdNotConnected
		case errors.As(err, &re):
			rep.Kind, rep.Error = fwdRemote, re.Message
		default:
			rep.Kind = fwdFailed
		}
	}
	switch req.Op {
	case "refresh":
		if n := m.node(req.Node); n != nil {
			n.wake()
		}
		_ = write(rep)
	case "call":
		p := m.peerOf(req.Node)
		if p == nil {
			fail(fmt.Errorf("node %d: %w", req.Node, ErrNotConnected))
			_ = write(rep)
			return
		}
		ctx := r.Context()
		if req.TimeoutMs > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMs)*time.Millisecond)
			defer cancel()
		}
		var out json.RawMessage
		if err := p.RoundTrip(ctx, req.Type, req.Body, &out); err != nil {
			fail(err)
		} else {
			rep.Body = out
		}
		_ = write(rep)
	case "logs":
		p := m.peerOf(req.Node)
		if req.Logs == nil || p == nil {
			fail(fmt.Errorf("node %d: %w", req.Node, ErrNotConnected))
			_ = write(rep)
			return
		}
		st, err := openLogs(r.Context(), req.Node, p, *req.Logs, max(req.Buffer, 1))
		if err != nil {
			fail(err)
			_ = write(rep)
			return
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			defer cancel()
			_ = st.Close(ctx)
		}()
		if write(rep) != nil {
			return
		}
		for {
			select {
			case <-r.Context().Done():
				return
			case <-m.forward.closing:
				return
			case e, ok := <-st.C:
				if !ok || write(e) != nil {
					return
				}
			}
		}
	default:
		http.Error(w, "unknown operation", http.StatusBadRequest)
	}
}
