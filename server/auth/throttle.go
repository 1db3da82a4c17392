package auth

import (
	"fmt"
	"sync"
	"time"

	"github.com/nullops/nullops/server/errs"
)

// ThrottleConfig limits password attempts (logins and password changes).
//
// Failures are counted per (username, client address) and per client
// address, never per username alone: an attacker at one address cannot keep
// the owner of an account out from another address. Within an allowance,
// attempts are free; beyond it each further attempt has to wait a delay that
// doubles with every failure (BaseDelay, 2*BaseDelay, …, at most Window).
// A key is forgotten once it has been quiet for its current delay plus
// Window, so waiting out a delay does not earn a fresh allowance.
type ThrottleConfig struct {
	Window         time.Duration // quiet time after which failures are forgotten; also the longest delay
	BaseDelay      time.Duration // the first delay once an allowance is used up
	MaxPerUserAddr int           // failures of one username from one address before delays start
	MaxPerAddr     int           // failures from one address (any usernames) before delays start
}

// DefaultThrottle allows 5 failures per username and address and 20 per
// address; then delays start at one minute and double up to 15 minutes.
var DefaultThrottle = ThrottleConfig{Window: 15 * time.Minute, BaseDelay: time.Minute, MaxPerUserAddr: 5, MaxPerAddr: 20}

// ThrottledError is returned while attempts for a username from an address,
// or from an address, must wait; RetryAfter says when the next attempt is
// allowed.
type ThrottledError struct {
	Scope      string // "username" or "client address"
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed attempts for this %s; try again in %s", e.Scope, roundUp(e.RetryAfter))
}

// As lets errors.As find a throttled attempt as an *errs.Error (429 with
// Retry-After).
func (e *ThrottledError) As(target any) bool {
	t, ok := target.(**errs.Error)
	if ok {
		*t = &errs.Error{Kind: errs.Throttled, Code: "too_many_attempts", Message: e.Error(), RetryAfter: e.RetryAfter, Err: e}
	}
	return ok
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
	keys      map[string]*tally
	lastSweep time.Time
}

// tally is one key's failures since it was last quiet for a window; an
// attempt in progress counts as a failure until it ends.
type tally struct {
	n    int
	last time.Time
}

// Memory bounds: beyond sweepKeys, quiet keys are swept (at most once a
// minute); beyond maxKeys, arbitrary keys are dropped.
const (
	sweepKeys = 10000
	maxKeys   = 100000
)

func newThrottle(cfg ThrottleConfig) *throttle {
	return &throttle{cfg: cfg, keys: map[string]*tally{}}
}

// allowance is the number of free failures of a key.
func (t *throttle) allowance(key string) int {
	if key[0] == 'a' {
		return t.cfg.MaxPerAddr
	}
	return t.cfg.MaxPerUserAddr
}

// delay is the wait after a key's last failure before its next attempt.
func (t *throttle) delay(key string, tl *tally) time.Duration {
	allow := t.allowance(key)
	if allow <= 0 || tl.n < allow {
		return 0
	}
	if over := tl.n - allow; over < 30 {
		return min(t.cfg.BaseDelay<<over, t.cfg.Window)
	}
	return t.cfg.Window
}

// get returns key's tally, forgetting it once quiet for its delay plus a
// window (caller holds mu).
func (t *throttle) get(key string, now time.Time) *tally {
	tl := t.keys[key]
	if tl != nil && now.Sub(tl.last) >= t.delay(key, tl)+t.cfg.Window {
		delete(t.keys, key)
		tl = nil
	}
	return tl
}

// wait is how long key must wait before its next attempt (caller holds mu).
func (t *throttle) wait(key string, now time.Time) time.Duration {
	tl := t.get(key, now)
	if tl == nil {
		return 0
	}
	return tl.last.Add(t.delay(key, tl)).Sub(now)
}

// attempt is a reserved password attempt: it counts as a failure from the
// moment it is allowed, so concurrent attempts cannot all pass the check.
// Exactly one of succeeded, failed or cancel must be called.
type attempt struct {
	t         *throttle
	user, adr string
}

func userAddrKey(username, addr string) string { return "u:" + username + "\x00" + addr }
func addrKey(addr string) string               { return "a:" + addr }

// begin reserves an attempt for username from addr, or returns a
// *ThrottledError saying how long to wait.
func (t *throttle) begin(username, addr string, now time.Time) (*attempt, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ua, a := userAddrKey(username, addr), addrKey(addr)
	if w := t.wait(ua, now); w > 0 {
		return nil, &ThrottledError{Scope: "username", RetryAfter: w}
	}
	if w := t.wait(a, now); w > 0 {
		return nil, &ThrottledError{Scope: "client address", RetryAfter: w}
	}
	t.bound(now)
	for _, k := range []string{ua, a} {
		tl := t.get(k, now)
		if tl == nil {
			tl = &tally{}
			t.keys[k] = tl
		}
		tl.n++
		tl.last = now
	}
	return &attempt{t: t, user: ua, adr: a}, nil
}

// bound keeps the map's size in check (caller holds mu).
func (t *throttle) bound(now time.Time) {
	if len(t.keys) > sweepKeys && now.Sub(t.lastSweep) >= time.Minute {
		t.lastSweep = now
		for k := range t.keys {
			t.get(k, now)
		}
	}
	for k := range t.keys {
		if len(t.keys) < maxKeys {
			break
		}
		delete(t.keys, k)
	}
}

// failed keeps the reservation as a failure.
func (a *attempt) failed() {}

// succeeded forgets the username's failures from this address and takes
// this attempt off the address's count.
func (a *attempt) succeeded() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	delete(a.t.keys, a.user)
	a.t.undo(a.adr)
}

// cancel takes back an attempt that checked no password (e.g. the server
// was too busy to verify it).
func (a *attempt) cancel() {
	a.t.mu.Lock()
	defer a.t.mu.Unlock()
	a.t.undo(a.user)
	a.t.undo(a.adr)
}

func (t *throttle) undo(key string) {
	if tl := t.keys[key]; tl != nil {
		if tl.n--; tl.n <= 0 {
			delete(t.keys, key)
		}
	}
}
