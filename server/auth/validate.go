package auth

import (
	"errors"
	"strings"
	"time"

	"github.com/nullops/nullops/internal/safetext"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// Field validation of users, teams, grants and tokens: every write of this
// package checks its input here before it opens a transaction, so a request
// with bad fields changes nothing and answers errs.Fields (400, code
// "invalid", the fields in details) like every other write of the server.

// Limits on account, team and token input.
const (
	MaxDisplayName     = 200
	MaxTeamName        = 100
	MaxTeamDescription = 1000
	// MaxTokenNameLen bounds API token names.
	MaxTokenNameLen = 100
	// MaxTokenDays bounds expires_in_days.
	MaxTokenDays = 3650
)

// checkDisplayName trims *name and adds its problems to v.
func checkDisplayName(v errs.Fields, name *string) {
	*name = strings.TrimSpace(*name)
	if len(*name) > MaxDisplayName {
		v.Add("display_name", "at most %d characters", MaxDisplayName)
	} else if err := safetext.Name(*name); err != nil {
		v.Add("display_name", "%s", err.Error())
	}
}

func checkRole(v errs.Fields, role string) {
	if role != store.RoleUser && role != store.RoleAdmin {
		v.Add("role", "must be admin or user")
	}
}

// check validates a new user, trims its display name and defaults its role.
func (n *NewUser) check() error {
	v := errs.Fields{}
	if err := CheckUsername(n.Username); err != nil {
		v.Add("username", "%s", err.Error())
	}
	if err := CheckPassword(n.Password); err != nil {
		v.Add("password", "%s", err.Error())
	}
	if n.Role == "" {
		n.Role = store.RoleUser
	}
	checkRole(v, n.Role)
	checkDisplayName(v, &n.DisplayName)
	return v.Err()
}

// checkUserUpdate validates the set fields of up and trims its display name.
func checkUserUpdate(up *store.UserUpdate) error {
	v := errs.Fields{}
	if up.DisplayName != nil {
		s := *up.DisplayName
		checkDisplayName(v, &s)
		up.DisplayName = &s
	}
	if up.Role != nil {
		checkRole(v, *up.Role)
	}
	return v.Err()
}

// usernameTaken is the answer to a username that exists already.
func usernameTaken(username string, err error) error {
	if !errors.Is(err, store.ErrConflict) {
		return err
	}
	return &errs.Error{Kind: errs.Conflict, Code: "conflict", Message: "username " + username + " is taken",
		Fields: errs.Fields{"username": "is taken"}, Err: err}
}

// TeamInput is a team to create (Name required) or the fields of one to
// change (nil stays as it is).
type TeamInput struct {
	Name        *string
	Description *string
}

// check validates the set fields and trims the name.
func (in *TeamInput) check(create bool) error {
	v := errs.Fields{}
	if in.Name != nil {
		s := strings.TrimSpace(*in.Name)
		in.Name = &s
	}
	if (create && in.Name == nil) || (in.Name != nil && (*in.Name == "" || len(*in.Name) > MaxTeamName)) {
		v.Add("name", "required, 1 to %d characters", MaxTeamName)
	}
	if in.Name != nil {
		if err := safetext.Name(*in.Name); err != nil {
			v.Add("name", "%s", err.Error())
		}
	}
	if in.Description != nil {
		if len(*in.Description) > MaxTeamDescription {
			v.Add("description", "at most %d characters", MaxTeamDescription)
		}
		if err := safetext.Text(*in.Description); err != nil {
			v.Add("description", "%s", err.Error())
		}
	}
	return v.Err()
}

// teamTaken is the answer to a team name that exists already.
func teamTaken(err error, name *string) error {
	if !errors.Is(err, store.ErrConflict) || name == nil {
		return err
	}
	return &errs.Error{Kind: errs.Conflict, Code: "conflict", Message: "team " + *name + " already exists",
		Fields: errs.Fields{"name": "is taken"}, Err: err}
}

// parseLevel is a grant's level, or the field error naming it.
func parseLevel(s string) (Level, error) {
	l, err := ParseLevel(s)
	if err != nil {
		return l, errs.Field("level", "must be read or full")
	}
	return l, nil
}

// NewToken is an API token to issue.
type NewToken struct {
	UserID int64
	Name   string
	// Expiry: ExpiresAt or ExpiresInDays (from now), at most one; neither
	// means no expiry.
	ExpiresAt     *time.Time
	ExpiresInDays *int
	// Within, when set, is the expiry of the token the request came with:
	// a token only creates tokens that expire no later than itself.
	Within *time.Time
}

// check validates the token's fields and returns its expiry.
func (n *NewToken) check(now time.Time) (*time.Time, error) {
	v := errs.Fields{}
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" || len(n.Name) > MaxTokenNameLen {
		v.Add("name", "required, at most %d characters", MaxTokenNameLen)
	} else if err := safetext.Name(n.Name); err != nil {
		v.Add("name", "%s", err.Error())
	}
	exp := n.ExpiresAt
	switch {
	case n.ExpiresAt != nil && n.ExpiresInDays != nil:
		v.Add("expires_at", "set expires_at or expires_in_days, not both")
	case n.ExpiresAt != nil && !n.ExpiresAt.After(now):
		v.Add("expires_at", "must be in the future")
	case n.ExpiresInDays != nil:
		if *n.ExpiresInDays < 1 || *n.ExpiresInDays > MaxTokenDays {
			v.Add("expires_in_days", "must be from 1 to %d", MaxTokenDays)
		} else {
			t := now.Add(time.Duration(*n.ExpiresInDays) * 24 * time.Hour)
			exp = &t
		}
	}
	if n.Within != nil && (exp == nil || exp.After(*n.Within)) {
		field := "expires_at"
		if n.ExpiresInDays != nil {
			field = "expires_in_days"
		}
		v.Add(field, "a token can only create tokens that expire no later than itself (%s)", n.Within.UTC().Format(time.RFC3339))
	}
	return exp, v.Err()
}
