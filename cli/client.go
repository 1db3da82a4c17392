// Package cli is the nullops command line: a thin client of the REST API for
// CI jobs and admins, authenticated with an API token. It speaks the API
// through package restapi and declares none of its shapes.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/nullops/nullops/restapi"
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

// NewClient is the REST client (package restapi, the API's contract) of
// a profile.
func NewClient(p Profile) *restapi.Client { return restapi.NewClient(p.Server, p.Token) }

// explain rewords a refused token: the API's wording is meant for browsers;
// a CLI user holds a token.
func explain(err error) error {
	var ae *restapi.Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		ae.Message = "the server refused the API token: it is wrong, expired or revoked"
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
