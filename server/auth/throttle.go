package auth

import (
	"fmt"
	"sync"
	"time"
)

// ThrottleConfig limits failed logins per username and per client address.
type ThrottleConfig struct {
	Window         time.Duration // failures older than this are forgotten
	MaxPerUsername int           // failures within Window before the username is refused
	MaxPerAddr     int           // failures within Window before the client address is refused
}

// DefaultThrottle allows 5 failures per username and 20 per client address
// in 15 minutes.
var DefaultThrottle = ThrottleConfig{Window: 15 * time.Minute, MaxPerUsername: 5, MaxPerAddr: 20}

// ThrottledError is returned by Login while a username or client address is
// refused; RetryAfter says when the next attempt can succeed.
type ThrottledError struct {
	Scope      string // "username" or "client address"
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins for this %s; try again in %s", e.Scope, roundUp(e.RetryAfter))
}

func roundUp(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return d.Round(time.Second)
}

// throttle remembers recent failures in memory (per server process).
type throttle struct {
	cfg       ThrottleConfig
	mu        sync.Mutex
	fails     map[string][]time.Time
	lastSweep time.Time
}

// Memory bounds: beyond sweepKeys, expired keys are swept (at most once a
// minute); beyond maxKeys, arbitrary keys are dropped.
const (
	sweepKeys = 10000
	maxKeys   = 100000
)

func newThrottle(cfg ThrottleConfig) *throttle {
	return &throttle{cfg: cfg, fails: map[string][]time.Time{}}
}

// recent returns key's failures within the window (caller holds mu).
func (t *throttle) recent(key string, now time.Time) []time.Time {
	ts := t.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= t.cfg.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(t.fails, key)
		return nil
	}
	t.fails[key] = ts
	return ts
}

// check returns a ThrottledError when the username or the address has
// reached its limit.
func (t *throttle) check(username, addr string, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range []struct {
		key, scope string
		max        int
	}{{"u:" + username, "username", t.cfg.MaxPerUsername}, {"a:" + addr, "client address", t.cfg.MaxPerAddr}} {
		if k.max <= 0 {
			continue
		}
		ts := t.recent(k.key, now)
		if len(ts) >= k.max {
			// Allowed again when enough of the oldest failures age out.
			return &ThrottledError{Scope: k.scope, RetryAfter: ts[len(ts)-k.max].Add(t.cfg.Window).Sub(now)}
		}
	}
	return nil
}

// fail records a failed attempt.
func (t *throttle) fail(username, addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fails) > sweepKeys && now.Sub(t.lastSweep) >= time.Minute {
		t.lastSweep = now
		for k := range t.fails {
			t.recent(k, now)
		}
	}
	for k := range t.fails {
		if len(t.fails) < maxKeys {
			break
		}
		delete(t.fails, k)
	}
	for _, k := range []string{"u:" + username, "a:" + addr} {
		ts := append(t.fails[k], now)
		if n := max(t.cfg.MaxPerUsername, t.cfg.MaxPerAddr); len(ts) > n {
			ts = ts[len(ts)-n:]
		}
		t.fails[k] = ts
	}
}

// succeed forgets the username's failures (not the address's).
func (t *throttle) succeed(username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, "u:"+username)
}
