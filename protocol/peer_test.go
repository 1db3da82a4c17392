package protocol

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pair connects two Peers over a real WebSocket on loopback.
func pair(t *testing.T, server Handler) (client *Peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_ = NewPeer(c, "a", server).Run(ctx)
	}))
	t.Cleanup(srv.Close)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPeer(c, "s", nil)
	go p.Run(ctx) //nolint:errcheck
	t.Cleanup(func() { _ = c.CloseNow() })
	return p
}

// TestRequestStreamKeepsFramesSentRightAfterTheReply: frames that follow
// the reply immediately on the wire reach the stream, in order, none lost.
func TestRequestStreamKeepsFramesSentRightAfterTheReply(t *testing.T) {
	const n = 200
	p := pair(t, func(ctx context.Context, p *Peer, e Envelope) {
		if e.Type != TypeLogsOpen {
			return
		}
		_ = p.Reply(ctx, e, Empty{})
		for i := 0; i < n; i++ {
			f, _ := NewEnvelope(TypeLogsData, LogsData{Data: string(rune('a' + i%26))})
			f.ReplyTo = e.ID
			_ = p.Send(ctx, f)
		}
	})
	stream := make(chan Envelope, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, _, err := CallLogsOpen.Stream(ctx, p, LogsOpen{DeploymentID: 1, Service: "api"}, stream)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		select {
		case f := <-stream:
			d, err := DecodeBody[LogsData](f)
			if err != nil || f.ReplyTo != id || d.Data != string(rune('a'+i%26)) {
				t.Fatalf("frame %d: %+v %v", i, f, err)
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d stream frames arrived", i, n)
		}
	}
}

// TestRequestErrorsAndTimeouts: an error reply is a RemoteError; no reply
// within the deadline is an error naming the request.
func TestRequestErrorsAndTimeouts(t *testing.T) {
	p := pair(t, func(ctx context.Context, p *Peer, e Envelope) {
		if e.Type == TypeDeploy {
			_ = p.ReplyError(ctx, e, errors.New("not implemented on this agent"))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var re *RemoteError
	if _, err := CallDeploy.Do(ctx, p, DeployRequest{}); !errors.As(err, &re) || re.Message != "not implemented on this agent" {
		t.Fatalf("error reply: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if _, err := CallSync.Do(short, p, SyncRequest{}); err == nil || !strings.Contains(err.Error(), "sync: no reply") {
		t.Fatalf("unanswered request: %v", err)
	}
}
