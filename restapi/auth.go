package restapi

import "time"

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
