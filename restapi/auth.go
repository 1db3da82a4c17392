package restapi

import (
	"encoding/json"
	"time"
)

// LoginRequest is the body of POST /auth/login (Content-Type: application/json).
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// User is a user account.
type User struct {
	ID          int64     `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Role        string    `json:"role"` // "admin" or "user"
	Active      bool      `json:"active"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Team is a team; Members counts its users.
type Team struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Members     int       `json:"members"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Me is GET /me and the answer of a login: who the caller is, how they
// authenticated ("session" or "token") and, for a session, the CSRF token
// and when it expires at the latest.
type Me struct {
	User      User       `json:"user"`
	Via       string     `json:"via"`
	CSRFToken string     `json:"csrf_token,omitempty"`
	ExpiresAt *time.Time `json:"session_expires_at,omitempty"`
	Teams     []Team     `json:"teams"`
}

// TokenRequest is the body of POST /tokens. Expiry is either ExpiresAt or
// ExpiresInDays; neither means no expiry.
type TokenRequest struct {
	Name          string     `json:"name"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	ExpiresInDays *int       `json:"expires_in_days,omitempty"`
}

// APIToken is an API token as listed (never its secret).
type APIToken struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	CreatedAt  time.Time  `json:"created_at"`
}

// TokenCreated is the answer of POST /tokens: the only time Token is shown.
type TokenCreated struct {
	APIToken
	Token string `json:"token"`
}

// UserRequest is the body of POST /users.
type UserRequest struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name,omitempty"`
	Password    string `json:"password"`
	Role        string `json:"role,omitempty"` // "admin" or "user" (default)
}

// UserPatch is the body of PATCH /users/:id; absent fields stay.
type UserPatch struct {
	DisplayName *string `json:"display_name,omitempty"`
	Role        *string `json:"role,omitempty"`
	Active      *bool   `json:"active,omitempty"`
}

// PasswordReset is the body of PUT /users/:id/password.
type PasswordReset struct {
	Password string `json:"password"`
}

// PasswordChange is the body of PUT /me/password. The caller's API tokens
// stay unless RevokeTokens is set.
type PasswordChange struct {
	Current      string `json:"current_password"`
	New          string `json:"new_password"`
	RevokeTokens bool   `json:"revoke_tokens,omitempty"`
}

// TeamRequest is the body of POST /teams and PATCH /teams/:id (absent
// fields stay).
type TeamRequest struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// TeamMember is a member of a team (GET /teams/:id/members).
type TeamMember struct {
	UserID      int64     `json:"user_id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	AddedAt     time.Time `json:"added_at"`
}

// Grant is a team's level on a project or an environment
// (GET /{projects|environments}/:id/access).
type Grant struct {
	ID            int64     `json:"id"`
	TeamID        int64     `json:"team_id"`
	TeamName      string    `json:"team"`
	ProjectID     *int64    `json:"project_id,omitempty"`
	EnvironmentID *int64    `json:"environment_id,omitempty"`
	Level         string    `json:"level"` // "read" or "full"
	CreatedAt     time.Time `json:"created_at"`
}

// AccessRequest is the body of PUT /{projects|environments}/:id/access/:team_id.
type AccessRequest struct {
	Level string `json:"level"` // "read" or "full"
}

// AuditEntry is one entry of the audit log (GET /audit): who did what to
// which object, with the action's detail as recorded.
type AuditEntry struct {
	ID            int64           `json:"id"`
	ActorID       *int64          `json:"actor_id"`
	ActorName     string          `json:"actor"`
	Action        string          `json:"action"`
	TargetType    string          `json:"target_type"`
	TargetID      string          `json:"target_id"`
	ProjectID     *int64          `json:"project_id"`
	EnvironmentID *int64          `json:"environment_id"`
	ClientAddr    string          `json:"client_addr"`
	Detail        json.RawMessage `json:"detail"`
	CreatedAt     time.Time       `json:"created_at"`
}
