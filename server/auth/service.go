// Package auth is identity and access for nullops-server: argon2id password
// hashing, server-side sessions, API tokens, login throttling, account
// management rules, and the Authorizer that decides every access
// (docs/architecture.md, "Security model"). It holds no SQL; rows come from server/store.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// Errors callers map to responses.
var (
	// ErrInvalidCredentials: unknown username or wrong password (one error
	// for both, so responses do not reveal which usernames exist).
	ErrInvalidCredentials = errs.New(errs.Unauthenticated, "invalid_credentials", "invalid username or password")
	// ErrDisabled: the password was right but the account is disabled.
	ErrDisabled = errs.New(errs.Forbidden, "account_disabled", "this account is disabled; ask an administrator")
	// ErrUnauthenticated: no valid session or token (missing, unknown,
	// expired, revoked, or the user is disabled).
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrLastAdmin: the change would leave no active administrator.
	ErrLastAdmin = errs.Mark(errs.Conflict, "last_admin", "this is the last active administrator; make another user admin first")
)

// Options tune a Service; zero values take the defaults.
type Options struct {
	Params          Params
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	Throttle        ThrottleConfig
	// HashSlots bounds concurrent argon2id computations (0 =
	// DefaultHashSlots); up to HashWaiters more callers (0 = 8 per slot)
	// wait at most HashWait (0 = 5s) for a slot before ErrBusy.
	HashSlots   int
	HashWaiters int
	HashWait    time.Duration
}

// Service authenticates callers and manages accounts.
type Service struct {
	*Authorizer
	Store *store.Store
	Log   zerolog.Logger
	// Now is the clock (tests move it to expire sessions and tokens).
	Now func() time.Time

	params    Params
	idle      time.Duration
	absolute  time.Duration
	throttle  *throttle
	pool      *hashPool
	dummyHash string
}

// New builds a Service.
func New(st *store.Store, log zerolog.Logger, o Options) (*Service, error) {
	if o.Params == (Params{}) {
		o.Params = DefaultParams
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 12 * time.Hour
	}
	if o.AbsoluteTimeout <= 0 {
		o.AbsoluteTimeout = 7 * 24 * time.Hour
	}
	if o.Throttle == (ThrottleConfig{}) {
		o.Throttle = DefaultThrottle
	}
	if o.HashSlots <= 0 {
		o.HashSlots = DefaultHashSlots(o.Params)
	}
	if o.HashWaiters <= 0 {
		o.HashWaiters = 8 * o.HashSlots
	}
	if o.HashWait <= 0 {
		o.HashWait = 5 * time.Second
	}
	// Verified against when the username does not exist, so that path costs
	// the same as a wrong password.
	dummy, err := HashPassword("not a real password, only spends time", o.Params)
	if err != nil {
		return nil, err
	}
	return &Service{
		Authorizer: &Authorizer{Store: st},
		Store:      st, Log: log, Now: time.Now,
		params: o.Params, idle: o.IdleTimeout, absolute: o.AbsoluteTimeout,
		throttle: newThrottle(o.Throttle, st), pool: newHashPool(o.HashSlots, o.HashWaiters, o.HashWait), dummyHash: dummy,
	}, nil
}

// OptionsFrom takes the session timeouts from the server configuration.
func OptionsFrom(s config.Session) Options {
	return Options{IdleTimeout: time.Duration(s.IdleTimeout), AbsoluteTimeout: time.Duration(s.AbsoluteTimeout)}
}

// Params returns the argon2id parameters used for new hashes.
func (s *Service) Params() Params { return s.params }

// HashPassword hashes pw with the service's parameters, in a slot of the
// hashing pool (ErrBusy when none frees up in time).
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	var h string
	var err error
	if perr := s.pool.run(ctx, func() { h, err = HashPassword(pw, s.params) }); perr != nil {
		return "", perr
	}
	return h, err
}

// verify is VerifyPassword in a slot of the hashing pool.
func (s *Service) verify(ctx context.Context, encoded, pw string) (ok, stale bool, err error) {
	if perr := s.pool.run(ctx, func() { ok, stale, err = VerifyPassword(encoded, pw, s.params) }); perr != nil {
		return false, false, perr
	}
	return ok, stale, err
}

// HashStats are figures of the password hashing pool.
type HashStats struct {
	Slots int   // concurrent computations allowed
	Runs  int64 // computations started (hashes and verifications)
	Peak  int   // most computations seen running at once
}

// HashStats reports the hashing pool's figures.
func (s *Service) HashStats() HashStats {
	return HashStats{Slots: cap(s.pool.slots), Runs: s.pool.runs.Load(), Peak: int(s.pool.peak.Load())}
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// NormalizeUsername lower-cases and trims a username as typed.
func NormalizeUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// CheckUsername returns why a new username is unacceptable, or nil.
func CheckUsername(u string) error {
	if !usernameRE.MatchString(u) {
		return errors.New("must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// LoginRequest is one login attempt.
type LoginRequest struct {
	Username   string
	Password   string
	ClientAddr string
	UserAgent  string
}

// LoginResult is a new session. SessionID goes into the cookie and nowhere
// else; only its SHA-256 is stored.
type LoginResult struct {
	SessionID string
	CSRFToken string
	ExpiresAt time.Time
	User      store.User
}

// Login checks credentials and opens a session, recording auth.login with
// the session, or auth.login_failed for a wrong password, an unknown or
// disabled user, or a throttled attempt. Errors: *ThrottledError (nothing
// was verified), ErrBusy, ErrInvalidCredentials, ErrDisabled, or an
// internal error (also when the audit entry cannot be written: then no
// session was opened).
func (s *Service) Login(ctx context.Context, r LoginRequest) (LoginResult, error) {
	res, err := s.login(ctx, r)
	if reason := failedLoginReason(err); reason != "" {
		name := NormalizeUsername(r.Username)
		if len(name) > 64 {
			name = name[:64]
		}
		e := store.Actor{Name: name, ClientAddr: r.ClientAddr}.Entry("auth.login_failed", "user", nil, map[string]string{"reason": reason})
		if res.User.ID != 0 {
			e.TargetID = strconv.FormatInt(res.User.ID, 10)
		}
		if aerr := s.Store.Audit(ctx, e); aerr != nil {
			return LoginResult{}, aerr
		}
	}
	return res, err
}

// failedLoginReason is the audit reason of a refused login ("" when the
// error is not a refusal: busy, canceled or internal).
func failedLoginReason(err error) string {
	var th *ThrottledError
	switch {
	case errors.As(err, &th):
		return "throttled"
	case errors.Is(err, ErrInvalidCredentials):
		return "bad_credentials"
	case errors.Is(err, ErrDisabled):
		return "disabled"
	}
	return ""
}

func (s *Service) login(ctx context.Context, r LoginRequest) (LoginResult, error) {
	now := s.Now()
	username := NormalizeUsername(r.Username)
	u, ok, stale, err := s.checkPassword(ctx, username, r.Password, r.ClientAddr, now)
	if err != nil {
		return LoginResult{User: u}, err
	}
	if !ok {
		return LoginResult{User: u}, ErrInvalidCredentials
	}
	if !u.Active {
		return LoginResult{User: u}, ErrDisabled
	}
	if stale {
		if h, err := s.HashPassword(ctx, r.Password); err == nil {
			if err := store.SetUserPassword(ctx, s.Store, u.ID, h); err != nil {
				s.Log.Warn().Err(err).Int64("user_id", u.ID).Msg("re-hash password with current parameters")
			}
		}
	}
	sid, err := randomString()
	if err != nil {
		return LoginResult{}, err
	}
	csrf, err := randomString()
	if err != nil {
		return LoginResult{}, err
	}
	exp := now.Add(s.absolute)
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.CreateSession(ctx, store.Session{
			IDHash: HashSecret(sid), UserID: u.ID, CSRFToken: csrf,
			ClientAddr: r.ClientAddr, UserAgent: strings.ToValidUTF8(truncate(r.UserAgent, 256), ""), CreatedAt: now, ExpiresAt: exp,
		}); err != nil {
			return err
		}
		return tx.Audit(ctx, store.UserActor(u.ID, u.Username, r.ClientAddr).Entry("auth.login", "user", u.ID, nil))
	})
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{SessionID: sid, CSRFToken: csrf, ExpiresAt: exp, User: u}, nil
}

// checkPassword is the one way a password is checked against a stored
// hash: the attempt is throttled per (username, address) and per address
// and reserved before anything is hashed, then verified in a slot of the
// hashing pool. An unknown username costs the same as a wrong password.
func (s *Service) checkPassword(ctx context.Context, username, pw, addr string, now time.Time) (u store.User, ok, stale bool, err error) {
	at, err := s.throttle.begin(ctx, username, addr, now)
	if err != nil {
		return store.User{}, false, false, err
	}
	hash := s.dummyHash
	known := false
	if len(username) <= 64 {
		u, hash, err = s.Store.UserCredentials(ctx, username)
		switch {
		case errors.Is(err, store.ErrNotFound):
			hash = s.dummyHash
		case err != nil:
			s.finish(at.cancel(ctx))
			return store.User{}, false, false, err
		default:
			known = true
		}
	}
	ok, stale, err = s.verify(ctx, hash, pw)
	if errors.Is(err, ErrBusy) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.finish(at.cancel(ctx))
		return u, false, false, err
	}
	if err != nil {
		s.Log.Error().Err(err).Int64("user_id", u.ID).Msg("unreadable password hash")
		ok = false
	}
	if !known || !ok {
		at.failed()
		return u, false, false, nil
	}
	s.finish(at.succeeded(ctx))
	return u, true, stale, nil
}

// finish logs an attempt's end that could not be recorded: the attempt
// then keeps counting as a failure until its key is forgotten, which errs
// on the safe side.
func (s *Service) finish(err error) {
	if err != nil {
		s.Log.Warn().Err(err).Msg("record the end of a password attempt")
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func principalOf(u store.User, via string) *Principal {
	return &Principal{UserID: u.ID, Username: u.Username, Admin: u.IsAdmin(), Via: via}
}

// SessionInfo is an authenticated session.
type SessionInfo struct {
	Principal *Principal
	CSRFToken string
	IDHash    []byte
	ExpiresAt time.Time
}

// Session authenticates a session cookie value. Expired sessions (idle or
// absolute) and sessions of disabled users are deleted and refused.
func (s *Service) Session(ctx context.Context, cookie string) (SessionInfo, error) {
	return s.session(ctx, cookie, true)
}

// CheckSession is Session without recording use: an open stream checking
// that its session is still valid does not keep it from idling out.
func (s *Service) CheckSession(ctx context.Context, cookie string) (SessionInfo, error) {
	return s.session(ctx, cookie, false)
}

func (s *Service) session(ctx context.Context, cookie string, touch bool) (SessionInfo, error) {
	if len(cookie) != 43 {
		return SessionInfo{}, ErrUnauthenticated
	}
	h := HashSecret(cookie)
	ss, u, err := s.Store.SessionByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return SessionInfo{}, ErrUnauthenticated
	}
	if err != nil {
		return SessionInfo{}, err
	}
	now := s.Now()
	if !now.Before(ss.ExpiresAt) || now.Sub(ss.LastSeenAt) >= s.idle || !u.Active {
		if err := s.Store.DeleteSession(ctx, h); err != nil {
			return SessionInfo{}, err
		}
		return SessionInfo{}, ErrUnauthenticated
	}
	// Record use at most once a minute (or per twentieth of the idle
	// timeout when that is shorter), not on every request.
	if touch && now.Sub(ss.LastSeenAt) >= min(time.Minute, s.idle/20) {
		if err := s.Store.TouchSession(ctx, h, now); err != nil {
			return SessionInfo{}, err
		}
	}
	return SessionInfo{Principal: principalOf(u, ViaSession), CSRFToken: ss.CSRFToken, IDHash: h, ExpiresAt: ss.ExpiresAt}, nil
}

// CheckCSRF compares the token a request sent with the session's.
func CheckCSRF(sent, want string) bool {
	return sent != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(want)) == 1
}

// Logout deletes the session of a cookie value (unknown values are fine;
// cookie "" deletes nothing, for a caller authenticated with a token) and
// records auth.logout by a, in one transaction.
func (s *Service) Logout(ctx context.Context, a store.Actor, cookie string) error {
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		if cookie != "" {
			if err := tx.DeleteSession(ctx, HashSecret(cookie)); err != nil {
				return err
			}
		}
		var target any
		if a.UserID != nil {
			target = *a.UserID
		}
		return tx.Audit(ctx, a.Entry("auth.logout", "user", target, nil))
	})
}

// Token authenticates an API token. Unknown, revoked and expired tokens and
// tokens of disabled users are refused.
func (s *Service) Token(ctx context.Context, token string) (*Principal, error) {
	if !LooksLikeAPIToken(token) {
		return nil, ErrUnauthenticated
	}
	t, u, err := s.Store.APITokenByHash(ctx, HashSecret(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	now := s.Now()
	if t.RevokedAt != nil || (t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)) || !u.Active {
		return nil, ErrUnauthenticated
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= time.Minute {
		if err := s.Store.TouchAPIToken(ctx, t.ID, now); err != nil {
			return nil, err
		}
	}
	p := principalOf(u, ViaToken)
	p.TokenID, p.TokenExpiresAt = t.ID, t.ExpiresAt
	return p, nil
}

// PruneSessions deletes expired sessions (idle or absolute) and forgotten
// login throttle keys now and then every interval until ctx ends. Both are
// ignored once expired anyway; this only keeps the tables small (and is
// harmless on several replicas at once).
func (s *Service) PruneSessions(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		now := s.Now()
		if n, err := s.throttle.prune(ctx, now); err != nil {
			if ctx.Err() == nil {
				s.Log.Warn().Err(err).Msg("prune login throttle")
			}
		} else if n > 0 {
			s.Log.Debug().Int64("keys", n).Msg("pruned forgotten login throttle keys")
		}
		if n, err := s.Store.DeleteExpiredSessions(ctx, now, now.Add(-s.idle)); err != nil {
			if ctx.Err() == nil {
				s.Log.Warn().Err(err).Msg("prune expired sessions")
			}
		} else if n > 0 {
			s.Log.Debug().Int64("sessions", n).Msg("pruned expired sessions")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
