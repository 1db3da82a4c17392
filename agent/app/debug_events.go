//go:build nullopsdebug

package app

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/journal"
)

// debugEvent is the body of POST /events on the test-only debug endpoint.
type debugEvent struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// debugHandler serves POST /events: it journals the given event exactly as
// the execution engine would (journal.EmitRaw, same validation, same outbox),
// so tests can produce events while the control plane is connected, cut
// off or away. It exists only in binaries built with -tags nullopsdebug,
// and there only when debug.eventslisten is set.
func debugHandler(j *journal.Journal, logger zerolog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		var ev debugEvent
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			http.Error(w, "body must be {\"type\":…,\"body\":{…}}: "+err.Error(), http.StatusBadRequest)
			return
		}
		seq, err := j.EmitRaw(ev.Type, ev.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		logger.Debug().Str("type", ev.Type).Uint64("seq", seq).Msg("debug event journaled")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]uint64{"seq": seq})
	})
	return mux
}

// serveDebug serves the test-only event endpoint on the debug listener,
// if one is bound; the server is returned for shutdown.
func (a *App) serveDebug(errc chan<- error) *http.Server {
	if a.debugListener == nil {
		return nil
	}
	a.Log.Warn().Str("addr", a.debugListener.Addr().String()).
		Msg("TEST-ONLY debug events endpoint enabled (POST /events journals arbitrary events); never enable it in production")
	dbg := &http.Server{Handler: debugHandler(a.Journal, a.Log), ReadHeaderTimeout: 10 * time.Second}
	go func() { errc <- dbg.Serve(a.debugListener) }()
	return dbg
}
