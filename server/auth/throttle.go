package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
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

// throttle keeps recent failures in PostgreSQL (table login_throttle), so
// every server replica on the database counts the same attempts: a client
// going round a load balancer's replicas meets one allowance, not one per
// replica. Attempts on one key are serialized by a transaction advisory
// lock, on whichever replica they arrive.
type throttle struct {
	cfg ThrottleConfig
	st  *store.Store
}

func newThrottle(cfg ThrottleConfig, st *store.Store) *throttle {
	return &throttle{cfg: cfg, st: st}
}

// allowance is the number of free failures of a key.
func (t *throttle) allowance(key string) int {
	if key[0] == 'a' {
		return t.cfg.MaxPerAddr
	}
	return t.cfg.MaxPerUserAddr
}

// delay is the wait after a key's last failure (its n-th) before its next
// attempt.
func (t *throttle) delay(key string, n int) time.Duration {
	allow := t.allowance(key)
	if allow <= 0 || n < allow {
		return 0
	}
	if over := n - allow; over < 30 {
		return min(t.cfg.BaseDelay<<over, t.cfg.Window)
	}
	return t.cfg.Window
}

// wait is how long a key with tally tl (zero: none) must wait at now.
func (t *throttle) wait(key string, tl store.ThrottleTally, now time.Time) time.Duration {
	if tl.Failures == 0 {
		return 0
	}
	return tl.LastAt.Add(t.delay(key, tl.Failures)).Sub(now)
}

// attempt is a reserved password attempt: it counts as a failure from the
// moment it is allowed, so concurrent attempts (on any replica) cannot all
// pass the check. Exactly one of succeeded, failed or cancel must be called.
type attempt struct {
	t         *throttle
	user, adr string
}

// userAddrKey names a (username, address) pair. The username is hashed:
// what a client types may hold NUL bytes or invalid UTF-8, which a
// PostgreSQL text column refuses, and may be long.
func userAddrKey(username, addr string) string {
	h := sha256.Sum256([]byte(username))
	return "u:" + addr + " " + hex.EncodeToString(h[:16])
}
func addrKey(addr string) string { return "a:" + addr }

// begin reserves an attempt for username from addr, or returns a
// *ThrottledError saying how long to wait.
func (t *throttle) begin(ctx context.Context, username, addr string, now time.Time) (*attempt, error) {
	ua, a := userAddrKey(username, addr), addrKey(addr)
	var throttled error
	err := t.st.InTx(ctx, func(tx *store.Store) error {
		throttled = nil
		// "a:…" sorts before "u:…": every replica locks in this order.
		tallies, err := tx.LockThrottleKeys(ctx, []string{a, ua}, now)
		if err != nil {
			return err
		}
		if w := t.wait(ua, tallies[ua], now); w > 0 {
			throttled = &ThrottledError{Scope: "username", RetryAfter: w}
			return nil
		}
		if w := t.wait(a, tallies[a], now); w > 0 {
			throttled = &ThrottledError{Scope: "client address", RetryAfter: w}
			return nil
		}
		for _, k := range []string{ua, a} {
			tl := tallies[k]
			tl.Key = k
			tl.Failures++
			tl.LastAt = now
			tl.ForgetAt = now.Add(t.delay(k, tl.Failures) + t.cfg.Window)
			if err := tx.SaveThrottleTally(ctx, tl); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if throttled != nil {
		return nil, throttled
	}
	return &attempt{t: t, user: ua, adr: a}, nil
}

// prune removes the keys forgotten at now.
func (t *throttle) prune(ctx context.Context, now time.Time) (int64, error) {
	return t.st.PruneThrottle(ctx, now)
}

// finishCtx: the end of an attempt is recorded even when the request that
// made it was cancelled meanwhile.
func finishCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// failed keeps the reservation as a failure.
func (a *attempt) failed() {}

// succeeded forgets the username's failures from this address and takes
// this attempt off the address's count.
func (a *attempt) succeeded(ctx context.Context) error {
	ctx, cancel := finishCtx(ctx)
	defer cancel()
	return a.t.st.InTx(ctx, func(tx *store.Store) error {
		if err := tx.ForgetThrottleKey(ctx, a.user); err != nil {
			return err
		}
		return tx.UndoThrottleFailure(ctx, a.adr)
	})
}

// cancel takes back an attempt that checked no password (e.g. the server
// was too busy to verify it).
func (a *attempt) cancel(ctx context.Context) error {
	ctx, cancel := finishCtx(ctx)
	defer cancel()
	return a.t.st.UndoThrottleFailure(ctx, a.user, a.adr)
}
