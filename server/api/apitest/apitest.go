// Package apitest runs the real nullops-server HTTP stack (app.New: same
// middleware, error handler, routes and auth service as production) on a
// fresh PostgreSQL database behind httptest, with clients that log in as
// admins or users. Every API test uses it.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/api"
	"github.com/nullops/nullops/server/app"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// Credentials of the bootstrap admin and the default password of users
// created with Env.User.
const (
	AdminUsername   = "admin"
	AdminPassword   = "admin-password-123"
	DefaultPassword = "user-password-123"
	IngressToken    = "apitest-ingress-token"
)

// SecretKey is the NULLOPS_SECRET_KEY of test servers.
var SecretKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x42}, 32))

// Env is a running server on its own database.
type Env struct {
	T      testing.TB
	App    *app.App
	Store  *store.Store
	Server *httptest.Server
	URL    string // base URL, e.g. http://127.0.0.1:1234
	Clock  *Clock
	// Admin is a session client logged in as the bootstrap admin.
	Admin *Client

	mu        sync.Mutex
	observers []func(*http.Request, *Response)
	pwHash    map[string]string
}

// Option changes the configuration before the server is built.
type Option func(*config.Config)

// New starts a server for the test; everything is torn down in t.Cleanup.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	cfg := config.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Database.URL = storetest.URL(t)
	cfg.Database.MaxConns = 10
	cfg.Secret.Key = SecretKey
	cfg.Admin = config.Admin{Username: AdminUsername, Password: AdminPassword}
	cfg.Ingress.Token = IngressToken
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("apitest config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	clock := &Clock{}
	a.Auth.Now = clock.Now
	// The production server's timeouts (app.HTTPServer) on httptest's listener.
	srv := httptest.NewUnstartedServer(a.Echo)
	hs := a.HTTPServer()
	srv.Config.ReadHeaderTimeout, srv.Config.ReadTimeout, srv.Config.IdleTimeout = hs.ReadHeaderTimeout, hs.ReadTimeout, hs.IdleTimeout
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Store.Close()
	})
	env := &Env{T: t, App: a, Store: a.Store, Server: srv, URL: srv.URL, Clock: clock, pwHash: map[string]string{}}
	env.Admin = env.Login(AdminUsername, AdminPassword)
	return env
}

// Clock is the auth service's clock: real time plus an offset that tests
// advance to expire sessions and tokens.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is time.Now plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Observe calls fn with every request made through a Client of this Env
// and its response (e.g. to scan all responses for secrets).
func (e *Env) Observe(fn func(*http.Request, *Response)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observers = append(e.observers, fn)
}

func (e *Env) observe(r *http.Request, resp *Response) {
	e.mu.Lock()
	obs := append([]func(*http.Request, *Response){}, e.observers...)
	e.mu.Unlock()
	for _, fn := range obs {
		fn(r, resp)
	}
}

// User creates an active user with DefaultPassword directly through the
// store (fast: the argon2id hash of each password is computed once per Env).
func (e *Env) User(username string, admin bool) store.User {
	return e.UserWithPassword(username, DefaultPassword, admin)
}

// UserWithPassword creates an active user with the given password.
func (e *Env) UserWithPassword(username, password string, admin bool) store.User {
	e.T.Helper()
	e.mu.Lock()
	h, ok := e.pwHash[password]
	e.mu.Unlock()
	if !ok {
		var err error
		if h, err = e.App.Auth.HashPassword(context.Background(), password); err != nil {
			e.T.Fatal(err)
		}
		e.mu.Lock()
		e.pwHash[password] = h
		e.mu.Unlock()
	}
	role := store.RoleUser
	if admin {
		role = store.RoleAdmin
	}
	u, err := store.CreateUser(context.Background(), e.Store.Pool, store.NewUser{Username: username, DisplayName: strings.ToUpper(username[:1]) + username[1:], PasswordHash: h, Role: role})
	if err != nil {
		e.T.Fatalf("create user %s: %v", username, err)
	}
	return u
}

// Login logs in through POST /api/v1/auth/login and returns a session
// client that sends the CSRF token on state-changing requests.
func (e *Env) Login(username, password string) *Client {
	e.T.Helper()
	c := e.Anonymous()
	r := c.Post("/api/v1/auth/login", map[string]string{"username": username, "password": password})
	if r.Status != http.StatusOK {
		e.T.Fatalf("login as %s: %d %s", username, r.Status, r.Body)
	}
	var me restapi.Me
	r.Decode(e.T, &me)
	u := me.User
	c.CSRF, c.User = me.CSRFToken, store.User{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: u.Role,
		Active: u.Active, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == api.SessionCookie {
			c.SessionID = ck.Value
		}
	}
	return c
}

// Session opens a session for u directly in the store (no password
// hashing, so it is fast) and returns a client using it, exactly as if the
// user had logged in.
func (e *Env) Session(u store.User) *Client {
	e.T.Helper()
	sid, csrf := randomB64(), randomB64()
	now := e.Clock.Now()
	if err := e.Store.CreateSession(context.Background(), store.Session{
		IDHash: auth.HashSecret(sid), UserID: u.ID, CSRFToken: csrf, ClientAddr: "127.0.0.1",
		CreatedAt: now, ExpiresAt: now.Add(time.Duration(e.App.Config.Session.AbsoluteTimeout)),
	}); err != nil {
		e.T.Fatal(err)
	}
	c := e.Anonymous()
	base, _ := url.Parse(e.URL)
	c.HTTP.Jar.SetCookies(base, []*http.Cookie{{Name: api.SessionCookie, Value: sid, Path: "/"}})
	c.CSRF, c.User, c.SessionID = csrf, u, sid
	return c
}

func randomB64() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// UserClient creates a user and logs in as them.
func (e *Env) UserClient(username string, admin bool) *Client {
	e.T.Helper()
	e.User(username, admin)
	return e.Login(username, DefaultPassword)
}

// Anonymous returns a client without credentials (with a cookie jar).
func (e *Env) Anonymous() *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{Env: e, HTTP: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

// TokenClient returns a client that authenticates with an API token.
func (e *Env) TokenClient(token string) *Client {
	c := e.Anonymous()
	c.Token = token
	return c
}

// NewToken creates an API token for user through the auth service.
func (e *Env) NewToken(userID int64, name string, expiresAt *time.Time) (string, store.APIToken) {
	e.T.Helper()
	tok, t, err := e.App.Auth.CreateToken(context.Background(), store.SystemActor, auth.NewToken{UserID: userID, Name: name, ExpiresAt: expiresAt})
	if err != nil {
		e.T.Fatal(err)
	}
	return tok, t
}

// Client calls the API as one identity.
type Client struct {
	Env   *Env
	HTTP  *http.Client
	CSRF  string // sent as X-CSRF-Token on POST/PUT/PATCH/DELETE when set
	Token string // sent as Authorization: Bearer when set
	// Header is sent with every request (e.g. X-Forwarded-For behind a
	// trusted proxy).
	Header http.Header
	User   store.User // who this client is logged in as (zero for anonymous/token)
	// SessionID is the session cookie value (a secret: tests check that no
	// response ever contains it).
	SessionID string
}

// Response is a completed request.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body into v or fails the test.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %d response %q: %v", r.Status, r.Body, err)
	}
}

// ErrorCode returns error.code of an error response ("" otherwise).
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Want fails the test unless the status is want; it returns r.
func (r *Response) Want(t testing.TB, want int) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
	return r
}

// Do sends a request. body is JSON-encoded unless it is nil, a string or a
// []byte (sent as is, with Content-Type application/json).
func (c *Client) Do(method, path string, body any) *Response {
	c.Env.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.Env.T.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.Env.URL+path, rd)
	if err != nil {
		c.Env.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.Prepare(req)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.Env.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.Env.T.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	c.Env.observe(req, r)
	return r
}

// Prepare adds this client's credentials (token, CSRF header) to a request
// built elsewhere (e.g. for streaming endpoints); send it with c.HTTP so the
// session cookie goes along.
func (c *Client) Prepare(req *http.Request) {
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if c.CSRF != "" {
			req.Header.Set(api.CSRFHeader, c.CSRF)
		}
	}
}

// Get, Post, Put, Patch and Delete are Do with a method.
func (c *Client) Get(path string) *Response { c.Env.T.Helper(); return c.Do(http.MethodGet, path, nil) }

// Post sends body as JSON.
func (c *Client) Post(path string, body any) *Response {
	c.Env.T.Helper()
	return c.Do(http.MethodPost, path, body)
}

// Put sends body as JSON.
func (c *Client) Put(path string, body any) *Response {
	c.Env.T.Helper()
	return c.Do(http.MethodPut, path, body)
}

// Patch sends body as JSON.
func (c *Client) Patch(path string, body any) *Response {
	c.Env.T.Helper()
	return c.Do(http.MethodPatch, path, body)
}

// Delete sends a DELETE.
func (c *Client) Delete(path string) *Response {
	c.Env.T.Helper()
	return c.Do(http.MethodDelete, path, nil)
}

// Fixtures for resources owned by other areas, inserted directly so access
// tests do not depend on those areas' APIs.

// Project inserts a project and returns its id.
func (e *Env) Project(name string) int64 {
	return e.insertID("INSERT INTO projects (name) VALUES ($1) RETURNING id", name)
}

// Environment inserts an environment (base domain <name>.test) and returns its id.
func (e *Env) Environment(name string) int64 {
	return e.insertID("INSERT INTO environments (name, base_domain) VALUES ($1, $1 || '.test') RETURNING id", name)
}

func (e *Env) insertID(q string, args ...any) int64 {
	e.T.Helper()
	var id int64
	if err := e.Store.Pool.QueryRow(context.Background(), q, args...).Scan(&id); err != nil {
		e.T.Fatalf("fixture %q: %v", q, err)
	}
	return id
}

// Team creates a team with the given members and returns its id.
func (e *Env) Team(name string, members ...int64) int64 {
	e.T.Helper()
	ctx := context.Background()
	t, err := store.CreateTeam(ctx, e.Store.Pool, name, "")
	if err != nil {
		e.T.Fatal(err)
	}
	for _, m := range members {
		if err := store.AddTeamMember(ctx, e.Store.Pool, t.ID, m); err != nil {
			e.T.Fatal(err)
		}
	}
	return t.ID
}

// Grant gives team a level on a project or an environment
// (scope store.ScopeProject or store.ScopeEnvironment).
func (e *Env) Grant(teamID int64, scope string, id int64, level auth.Level) {
	e.T.Helper()
	if _, err := store.PutGrant(context.Background(), e.Store.Pool, store.GrantScope{Kind: scope, ID: id}, teamID, level.String()); err != nil {
		e.T.Fatal(err)
	}
}

// Path formats an API path: Path("/projects/%d/access", id) = "/api/v1/projects/1/access".
func Path(format string, args ...any) string { return api.APIPrefix + fmt.Sprintf(format, args...) }
