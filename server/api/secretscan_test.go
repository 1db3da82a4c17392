package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/nullops/nullops/server/api"
	"github.com/nullops/nullops/server/api/apitest"
)

// secretScan records every response of an Env and checks, at the end, that
// none contains a password, password hash, session id, session or token
// hash, API token (outside its one creation response) or server secret.
type secretScan struct {
	env *apitest.Env

	mu        sync.Mutex
	responses []scanned
	sessions  map[string]bool // session ids seen in cookies
	tokens    map[string]bool // API tokens seen in Authorization headers
}

type scanned struct {
	what   string
	body   []byte
	header http.Header
	create bool // POST /api/v1/tokens → 201: the one place a token may appear
	// nodeToken: adding a node or rotating its token, the only answers that
	// may carry a node token.
	nodeToken bool
}

func scanResponses(t *testing.T, env *apitest.Env) *secretScan {
	s := &secretScan{env: env, sessions: map[string]bool{}, tokens: map[string]bool{}}
	env.Observe(func(req *http.Request, r *apitest.Response) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ck := range req.Cookies() {
			if ck.Name == api.SessionCookie {
				s.sessions[ck.Value] = true
			}
		}
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
			s.tokens[tok] = true
		}
		for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
			if ck.Name == api.SessionCookie && ck.Value != "" {
				s.sessions[ck.Value] = true
			}
		}
		h := r.Header.Clone()
		h.Del("Set-Cookie") // the session cookie is meant to be there
		s.responses = append(s.responses, scanned{
			what: req.Method + " " + req.URL.Path, body: r.Body, header: h,
			create: req.Method == http.MethodPost && req.URL.Path == "/api/v1/tokens" && r.Status == http.StatusCreated,
			nodeToken: req.Method == http.MethodPost && r.Status < 300 &&
				(nodeCreatePath.MatchString(req.URL.Path) || strings.HasSuffix(req.URL.Path, "/rotate-token")),
		})
	})
	return s
}

var (
	tokenRE        = regexp.MustCompile(`nlo_[A-Za-z0-9_-]{43}`)
	nodeTokenRE    = regexp.MustCompile(`nullops-node_[A-Za-z0-9_-]{20,}`)
	nodeCreatePath = regexp.MustCompile(`^/api/v1/environments/\d+/nodes$`)
)

func encodings(b []byte) []string {
	return []string{hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)), base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
}

func (s *secretScan) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	secrets := map[string]string{
		apitest.SecretKey:       "secret key",
		apitest.IngressToken:    "ingress token",
		apitest.AdminPassword:   "admin password",
		apitest.DefaultPassword: "user password",
		"$argon2id$":            "password hash",
	}
	rows, err := s.env.Store.Pool.Query(ctx, `SELECT 'password hash', convert_to(password_hash, 'UTF8') FROM users
		UNION ALL SELECT 'session hash', id_hash FROM sessions
		UNION ALL SELECT 'token hash', token_hash FROM api_tokens`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var kind string
		var b []byte
		if err := rows.Scan(&kind, &b); err != nil {
			t.Fatal(err)
		}
		if kind == "password hash" {
			secrets[string(b)] = kind
			parts := strings.Split(string(b), "$")
			secrets[parts[len(parts)-1]] = kind + " key"
			continue
		}
		for _, e := range encodings(b) {
			secrets[e] = kind
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sid := range s.sessions {
		secrets[sid] = "session id"
	}
	for tok := range s.tokens {
		secrets[tok] = "api token"
	}
	if len(s.responses) == 0 {
		t.Fatal("secret scan saw no responses")
	}
	for _, r := range s.responses {
		var hdr bytes.Buffer
		_ = r.header.Write(&hdr)
		for _, where := range []struct {
			name string
			b    []byte
		}{{"body", r.body}, {"headers", hdr.Bytes()}} {
			for sec, kind := range secrets {
				if len(sec) >= 8 && bytes.Contains(where.b, []byte(sec)) {
					t.Errorf("%s: response %s contains a %s", r.what, where.name, kind)
				}
			}
			if !r.create && tokenRE.Match(where.b) {
				t.Errorf("%s: response %s contains an API token", r.what, where.name)
			}
			if !r.nodeToken && nodeTokenRE.Match(where.b) {
				t.Errorf("%s: response %s contains a node token", r.what, where.name)
			}
		}
	}
	t.Logf("secret scan: %d responses, %d secrets", len(s.responses), len(secrets))
}
