package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
)

// Client calls the REST API of a server. It authenticates with an API token
// (Authorization: Bearer), or, after Login, with the session cookie and the
// CSRF token. Failed requests return an *Error with the HTTP status.
type Client struct {
	Base  string // the server's URL, without Prefix
	Token string // API token; "" for a session client
	HTTP  *http.Client
	csrf  string
}

// NewClient is a client of the server at base using an API token.
func NewClient(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{}}
}

// Login signs in with a password (POST /auth/login) and returns a session
// client (its own cookie jar, on a copy of hc) and who logged in.
func Login(ctx context.Context, base string, hc *http.Client, username, password string) (*Client, Me, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, Me{}, err
	}
	h := *hc
	h.Jar = jar
	c := &Client{Base: strings.TrimRight(base, "/"), HTTP: &h}
	var me Me
	if err := c.Do(ctx, http.MethodPost, "/auth/login", LoginRequest{Username: username, Password: password}, &me); err != nil {
		return nil, me, err
	}
	c.csrf = me.CSRFToken
	return c, me, nil
}

// Do sends a JSON request to Prefix+path and decodes the JSON answer into
// out (may be nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return decodeError(resp.StatusCode, b)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Stream GETs Prefix+path and copies the body to w until it ends or ctx is
// cancelled (which is not an error).
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		return decodeError(resp.StatusCode, b)
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+Prefix+path, r)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.csrf != "" && method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// decodeError reads an error answer: the error body when it is one, else
// the text as the message (code "http").
func decodeError(status int, b []byte) error {
	var body ErrorBody
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Code != "" {
		body.Error.Status = status
		return body.Error
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Code: "http", Message: msg}
}

// Me is GET /me.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var me Me
	return me, c.Do(ctx, http.MethodGet, "/me", nil, &me)
}

// CreateToken is POST /tokens.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (TokenCreated, error) {
	var t TokenCreated
	return t, c.Do(ctx, http.MethodPost, "/tokens", req, &t)
}

// Deployments is one page of GET /deployments with the query q (project,
// environment, status, q, mine, sort, order, page, per_page).
func (c *Client) Deployments(ctx context.Context, q url.Values) (List[Deployment], error) {
	var l List[Deployment]
	path := "/deployments"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return l, c.Do(ctx, http.MethodGet, path, nil, &l)
}

// Deployment is GET /deployments/:id.
func (c *Client) Deployment(ctx context.Context, id int64) (Deployment, error) {
	var d Deployment
	return d, c.Do(ctx, http.MethodGet, fmt.Sprintf("/deployments/%d", id), nil, &d)
}

// CreateDeployment is POST /deployments.
func (c *Client) CreateDeployment(ctx context.Context, req CreateDeploymentRequest) (Deployment, error) {
	var d Deployment
	return d, c.Do(ctx, http.MethodPost, "/deployments", req, &d)
}

// CloneDeployment is POST /deployments/:id/clone.
func (c *Client) CloneDeployment(ctx context.Context, id int64, req CloneDeploymentRequest) (Deployment, error) {
	var d Deployment
	return d, c.Do(ctx, http.MethodPost, fmt.Sprintf("/deployments/%d/clone", id), req, &d)
}

// Deployment actions of ChangeDeployment.
const (
	ActionDelete = "delete" // DELETE /deployments/:id
	ActionCancel = "cancel" // POST /deployments/:id/cancel
	ActionRetry  = "retry"  // POST /deployments/:id/retry
	ActionExtend = "extend" // POST /deployments/:id/extend
)

// ChangeDeployment applies an action to a deployment and returns it as it
// is now.
func (c *Client) ChangeDeployment(ctx context.Context, id int64, action string) (Deployment, error) {
	method, path := http.MethodPost, fmt.Sprintf("/deployments/%d/%s", id, action)
	if action == ActionDelete {
		method, path = http.MethodDelete, fmt.Sprintf("/deployments/%d", id)
	}
	var d Deployment
	return d, c.Do(ctx, method, path, nil, &d)
}
