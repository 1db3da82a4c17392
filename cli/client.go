// Package cli is the nullops command line: a thin client of the REST API for
// CI jobs and admins, authenticated with an API token.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Profile is what `nullops login` stores.
type Profile struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// ProfilePath is where the profile lives ($NULLOPS_CONFIG or the user config dir).
func ProfilePath() (string, error) {
	if p := os.Getenv("NULLOPS_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locate config dir: %w", err)
	}
	return filepath.Join(dir, "nullops", "config.json"), nil
}

// LoadProfile reads the stored profile; NULLOPS_SERVER and NULLOPS_TOKEN
// override it (handy in CI).
func LoadProfile() (Profile, error) {
	var p Profile
	if path, err := ProfilePath(); err == nil {
		if b, err := os.ReadFile(path); err == nil {
			if err := json.Unmarshal(b, &p); err != nil {
				return p, fmt.Errorf("read %s: %w", path, err)
			}
		}
	}
	if s := os.Getenv("NULLOPS_SERVER"); s != "" {
		p.Server = s
	}
	if t := os.Getenv("NULLOPS_TOKEN"); t != "" {
		p.Token = t
	}
	if p.Server == "" || p.Token == "" {
		return p, errors.New("not logged in: run `nullops login --server URL --token TOKEN` or set NULLOPS_SERVER and NULLOPS_TOKEN")
	}
	return p, nil
}

// SaveProfile writes the profile with owner-only permissions.
func SaveProfile(p Profile) (string, error) {
	path, err := ProfilePath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// Client calls the API with a bearer token.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// NewClient builds a client for a profile.
func NewClient(p Profile) *Client {
	return &Client{Base: strings.TrimRight(p.Server, "/"), Token: p.Token, HTTP: &http.Client{Timeout: 0}}
}

// APIError is the server's error shape.
type APIError struct {
	Status  int               `json:"-"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details map[string]string `json:"details,omitempty"`
}

func (e *APIError) Error() string {
	msg := e.Message
	if e.Status == http.StatusUnauthorized {
		// The API's wording is meant for browsers; a CLI user holds a token.
		msg = "the server refused the API token: it is wrong, expired or revoked"
	}
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	fields := make([]string, 0, len(e.Details))
	for f := range e.Details {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		msg += fmt.Sprintf("\n  %s: %s", f, e.Details[f])
	}
	return msg
}

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Do sends a JSON request and decodes the JSON reply into out (may be nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if resp.StatusCode >= 300 {
		var wrapper struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(b, &wrapper) == nil && wrapper.Error != nil {
			wrapper.Error.Status = resp.StatusCode
			return wrapper.Error
		}
		return &APIError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode reply of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Stream opens a streaming GET and copies the body to w until it ends or ctx
// is cancelled.
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		var wrapper struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(b, &wrapper) == nil && wrapper.Error != nil {
			wrapper.Error.Status = resp.StatusCode
			return wrapper.Error
		}
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// query builds "?k=v&…" from non-empty values.
func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
