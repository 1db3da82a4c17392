package agents

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
)

// FuzzForwardEndpoint: whatever arrives at the forwarding endpoint without
// the replicas' key is refused with 401, without a panic and before any
// of it is decoded or acted on.
func FuzzForwardEndpoint(f *testing.F) {
	m := New(Options{Log: zerolog.Nop(), ForwardKey: ForwardKey(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)))})
	other, _ := newSealer(ForwardKey(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))))
	f.Add([]byte(`{"op":"call","node":1,"type":"sync"}`))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 40))
	f.Add(other.seal([]byte(`{"op":"refresh","node":1}`), adRequest))
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		m.serveForward(rec, httptest.NewRequest(http.MethodPost, PathForward, bytes.NewReader(body)))
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("unsealed body answered %d", rec.Code)
		}
	})
}
