package auth

import (
	"context"
	"fmt"

	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// Every write here validates, changes the database and records its audit
// entry in one transaction: when the entry cannot be written, nothing
// changed.

// NewUser is an account to create.
type NewUser struct {
	Username    string
	DisplayName string
	Password    string
	// Role is store.RoleAdmin or store.RoleUser ("" = user).
	Role string
	// Via, when set, is recorded in the audit entry (how the user was made).
	Via string
}

// CreateUser validates (errs.Fields), hashes the password, inserts the
// user and records user.create by a. A taken username is a conflict naming
// the field (errors.Is store.ErrConflict).
func (s *Service) CreateUser(ctx context.Context, a store.Actor, n NewUser) (store.User, error) {
	nu, err := s.newUserRow(ctx, n)
	if err != nil {
		return store.User{}, err
	}
	var u store.User
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		if u, err = store.CreateUser(ctx, tx, nu); err != nil {
			return usernameTaken(nu.Username, err)
		}
		return tx.Audit(ctx, a.Entry("user.create", "user", u.ID, userCreated(u, n.Via)))
	})
	return u, err
}

func userCreated(u store.User, via string) map[string]any {
	d := map[string]any{"username": u.Username, "role": u.Role}
	if via != "" {
		d["via"] = via
	}
	return d
}

func (s *Service) newUserRow(ctx context.Context, n NewUser) (store.NewUser, error) {
	if err := n.check(); err != nil {
		return store.NewUser{}, err
	}
	hash, err := s.HashPassword(ctx, n.Password)
	if err != nil {
		return store.NewUser{}, err
	}
	return store.NewUser{Username: n.Username, DisplayName: n.DisplayName, PasswordHash: hash, Role: n.Role}, nil
}

// Bootstrap creates the first admin from the configuration when no user
// exists yet; it does nothing once any user exists.
func (s *Service) Bootstrap(ctx context.Context, a config.Admin) error {
	if a.Username == "" {
		_, total, err := s.Store.ListUsers(ctx, store.UserFilter{Limit: 1})
		if err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if total == 0 {
			s.Log.Warn().Msg("no user exists: set NULLOPS_ADMIN_USERNAME and NULLOPS_ADMIN_PASSWORD, or run `nullops-server admin create`")
		}
		return nil
	}
	nu, err := s.newUserRow(ctx, NewUser{Username: NormalizeUsername(a.Username), Password: a.Password, Role: store.RoleAdmin})
	if err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	var u store.User
	var created bool
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		if u, created, err = tx.CreateFirstUser(ctx, nu); err != nil || !created {
			return err
		}
		return tx.Audit(ctx, store.SystemActor.Entry("user.create", "user", u.ID,
			map[string]any{"username": u.Username, "role": u.Role, "bootstrap": true}))
	})
	if err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	if created {
		s.Log.Info().Str("username", u.Username).Msg("created the first administrator")
	}
	return nil
}

// CreateToken validates n (errs.Fields), issues an API token for n.UserID
// and records token.create by a. The token is returned once and never
// stored.
func (s *Service) CreateToken(ctx context.Context, a store.Actor, n NewToken) (string, store.APIToken, error) {
	expiresAt, err := n.check(s.Now())
	if err != nil {
		return "", store.APIToken{}, err
	}
	tok, prefix, err := NewAPIToken()
	if err != nil {
		return "", store.APIToken{}, err
	}
	var t store.APIToken
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		t, err = store.CreateAPIToken(ctx, tx, store.NewAPIToken{
			UserID: n.UserID, Name: n.Name, Hash: HashSecret(tok), Prefix: prefix, ExpiresAt: expiresAt, CreatedAt: s.Now(),
		})
		if err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("token.create", "api_token", t.ID,
			map[string]any{"name": t.Name, "prefix": t.Prefix, "expires_at": t.ExpiresAt}))
	})
	if err != nil {
		return "", store.APIToken{}, err
	}
	return tok, t, nil
}

// RevokeToken revokes a token of userID (another user's token is
// store.ErrNotFound) and records token.revoke by a.
func (s *Service) RevokeToken(ctx context.Context, a store.Actor, userID, tokenID int64) (store.APIToken, error) {
	var t store.APIToken
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if t, err = store.RevokeAPIToken(ctx, tx, userID, tokenID, s.Now()); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("token.revoke", "api_token", t.ID, map[string]any{"name": t.Name, "prefix": t.Prefix}))
	})
	return t, err
}

// PasswordChange is a user changing their own password.
type PasswordChange struct {
	UserID     int64
	Username   string
	Current    string
	New        string
	ClientAddr string
	// KeepSession is the caller's session hash (nil when called with a token).
	KeepSession []byte
	// RevokeTokens also revokes all of the user's API tokens (the one the
	// call came with included); without it they stay.
	RevokeTokens bool
}

// ChangePassword sets a new password after checking the current one (a
// password attempt like a login: throttled, *ThrottledError or ErrBusy),
// ends the user's other sessions, revokes their API tokens when asked
// (RevokeTokens) and records user.password_change. Bad
// fields, a wrong current password among them, are errs.Fields (the wrong
// password also errors.Is ErrInvalidCredentials).
func (s *Service) ChangePassword(ctx context.Context, c PasswordChange) error {
	v := errs.Fields{}
	if c.Current == "" {
		v.Add("current_password", "required")
	}
	if err := CheckPassword(c.New); err != nil {
		v.Add("new_password", "%s", err.Error())
	}
	if err := v.Err(); err != nil {
		return err
	}
	_, ok, _, err := s.checkPassword(ctx, c.Username, c.Current, c.ClientAddr, s.Now())
	if err != nil {
		return err
	}
	if !ok {
		return &errs.Error{Kind: errs.Invalid, Code: "invalid", Message: "current_password: is not your current password",
			Fields: errs.Fields{"current_password": "is not your current password"}, Err: ErrInvalidCredentials}
	}
	hash, err := s.hashNew(ctx, "new_password", c.New)
	if err != nil {
		return err
	}
	a := store.UserActor(c.UserID, c.Username, c.ClientAddr)
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		revoked, err := s.setPassword(ctx, tx, c.UserID, hash, c.KeepSession, c.RevokeTokens)
		if err != nil {
			return err
		}
		var detail map[string]any
		if c.RevokeTokens {
			detail = map[string]any{"tokens_revoked": revoked}
		}
		return tx.Audit(ctx, a.Entry("user.password_change", "user", c.UserID, detail))
	})
}

// ResetPassword is an admin setting another user's password (or their own,
// keeping keepSession): it ends the user's sessions except keepSession,
// revokes all their API tokens and records user.password_reset by a. An
// unknown user is store.ErrNotFound, a bad password errs.Fields.
func (s *Service) ResetPassword(ctx context.Context, a store.Actor, userID int64, pw string, keepSession []byte) error {
	if err := CheckPassword(pw); err != nil {
		return errs.Field("password", "%s", err.Error())
	}
	if _, err := s.Store.GetUser(ctx, userID); err != nil {
		return err
	}
	hash, err := s.hashNew(ctx, "password", pw)
	if err != nil {
		return err
	}
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		revoked, err := s.setPassword(ctx, tx, userID, hash, keepSession, true)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("user.password_reset", "user", userID, map[string]any{"tokens_revoked": revoked}))
	})
}

// hashNew checks a new password (a problem of field) and hashes it.
func (s *Service) hashNew(ctx context.Context, field, pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", errs.Field(field, "%s", err.Error())
	}
	return s.HashPassword(ctx, pw)
}

// setPassword stores hash as the user's password and ends their sessions
// except keepSession; with revokeTokens it also revokes their API tokens
// and returns how many.
func (s *Service) setPassword(ctx context.Context, tx *store.Store, userID int64, hash string, keepSession []byte, revokeTokens bool) (int64, error) {
	if err := store.SetUserPassword(ctx, tx, userID, hash); err != nil {
		return 0, err
	}
	var revoked int64
	if revokeTokens {
		var err error
		if revoked, err = store.RevokeUserAPITokens(ctx, tx, userID, s.Now()); err != nil {
			return 0, err
		}
	}
	return revoked, store.DeleteUserSessions(ctx, tx, userID, keepSession)
}

// UpdateUser validates (errs.Fields) and changes a user's display name,
// role or active flag and records user.update by a. It refuses to demote or disable the last active
// admin, and ends the sessions and revokes the API tokens of a user being
// disabled (enabling them again does not bring the tokens back).
func (s *Service) UpdateUser(ctx context.Context, a store.Actor, id int64, up store.UserUpdate) (store.User, error) {
	if err := checkUserUpdate(&up); err != nil {
		return store.User{}, err
	}
	var out store.User
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		cur, err := store.LockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		losesAdmin := cur.IsAdmin() && cur.Active &&
			((up.Role != nil && *up.Role != store.RoleAdmin) || (up.Active != nil && !*up.Active))
		if losesAdmin {
			if err := lastAdminCheck(ctx, tx); err != nil {
				return err
			}
		}
		if out, err = store.UpdateUser(ctx, tx, id, up); err != nil {
			return err
		}
		if !out.Active {
			if _, err := store.RevokeUserAPITokens(ctx, tx, id, s.Now()); err != nil {
				return err
			}
			if err := store.DeleteUserSessions(ctx, tx, id, nil); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, a.Entry("user.update", "user", out.ID,
			map[string]any{"display_name": up.DisplayName, "role": up.Role, "active": up.Active}))
	})
	return out, err
}

// lastAdminCheck is ErrLastAdmin when at most one active admin is left
// (their rows stay locked until the transaction ends).
func lastAdminCheck(ctx context.Context, tx *store.Store) error {
	n, err := store.LockActiveAdmins(ctx, tx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return ErrLastAdmin
	}
	return nil
}

// DeleteUser removes a user, refusing to remove the last active admin, and
// records user.delete by a.
func (s *Service) DeleteUser(ctx context.Context, a store.Actor, id int64) (store.User, error) {
	var cur store.User
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if cur, err = store.LockUser(ctx, tx, id); err != nil {
			return err
		}
		if cur.IsAdmin() && cur.Active {
			if err := lastAdminCheck(ctx, tx); err != nil {
				return err
			}
		}
		if err := store.DeleteUser(ctx, tx, id); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("user.delete", "user", cur.ID, map[string]any{"username": cur.Username}))
	})
	return cur, err
}
