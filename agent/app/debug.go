package app

import (
	"encoding/json"
	"io"
	"log"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/journal"
)

// debugEvent is the body of POST /events on the test-only debug endpoint.
type debugEvent struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// debugHandler serves POST /events: it journals the given event exactly as
// the execution engine would (journal.Emit, same validation, same outbox),
// so tests can produce events while the control plane is connected, cut
// off or away. It exists only when debug.eventslisten is set.
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
		seq, err := j.Emit(ev.Type, ev.Body)
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

// newStdLogger routes net/http's own error log (TLS handshake errors of
// scanners and the like) into zerolog at debug level.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(zerologWriter{l}, "", 0)
}

type zerologWriter struct{ l zerolog.Logger }

func (w zerologWriter) Write(p []byte) (int, error) {
	w.l.Debug().Str("source", "net/http").Msg(string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	return p
}
