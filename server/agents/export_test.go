package agents

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/store"
)

// Crash stops the manager like kill -9 would leave it: connections end,
// but the replica's row and leases stay until they expire.
func (m *Manager) Crash() {
	m.mu.Lock()
	m.crashed = true
	m.mu.Unlock()
	m.Stop()
}

// Freeze makes the lease loop and the pings stand still (a process stopped
// with SIGSTOP, seen from outside); Thaw resumes them.
func (m *Manager) Freeze() { m.frozen.Store(true) }
func (m *Manager) Thaw()   { m.frozen.Store(false); m.kickLeases() }

// Preferred is the rendezvous choice of a node among live replica ids.
func Preferred(nodeID int64, live []string) string { return preferred(nodeID, live) }

// ApplyEventAt applies one event as the connection of epoch would.
func (m *Manager) ApplyEventAt(ctx context.Context, nodeID, epoch int64, instance string, e protocol.Envelope) error {
	return m.applyEvent(ctx, zerolog.Nop(), nodeID, epoch, instance, e)
}

// DialAt dials an agent with a given epoch and reports the refusal, if any
// (nil: the agent accepted; the connection is closed at once).
func DialAt(ctx context.Context, host string, port int, token, thumbprint string, epoch int64) error {
	res, err := dial(ctx, host, port, token, thumbprint, epoch, 5*time.Second, nil)
	if err == nil {
		_ = res.conn.CloseNow()
	}
	return err
}

// IsStaleRefusal reports whether err is the agent refusing a stale epoch.
func IsStaleRefusal(err error) bool {
	r, ok := err.(*errRefused)
	return ok && r.stale()
}

// LastRenewal is when the last successful lease renewal started.
func (m *Manager) LastRenewal() time.Time {
	m.leases.mu.Lock()
	defer m.leases.mu.Unlock()
	return m.leases.renewed
}

// Candidates are the replica ids nodes may prefer (lease.go).
func Candidates(reps []store.Replica, self string, settle time.Duration) []string {
	return candidates(reps, self, settle)
}
