package restapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nullops/nullops/restapi"
)

// TestClientSpeaksTheContract: a token client sends the bearer token; a
// password session sends its cookie everywhere and the CSRF token on
// changes only; an error answer is the *restapi.Error with its status, and
// an answer that is not the error body still becomes one.
func TestClientSpeaksTheContract(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		var req restapi.LoginRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Username != "dev" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("login body %+v %v", req, err)
		}
		http.SetCookie(w, &http.Cookie{Name: "nullops_session", Value: "s1", Path: "/"})
		_ = json.NewEncoder(w).Encode(restapi.Me{User: restapi.User{Username: "dev"}, Via: "session", CSRFToken: "c1"})
	})
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		ck, _ := r.Cookie("nullops_session")
		if r.Header.Get("Authorization") == "Bearer nlo_t" || ck != nil && ck.Value == "s1" && r.Header.Get("X-CSRF-Token") == "" {
			_ = json.NewEncoder(w).Encode(restapi.Me{User: restapi.User{Username: "dev"}})
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(restapi.ErrorBody{Error: &restapi.Error{Code: "unauthenticated", Message: "log in"}})
	})
	mux.HandleFunc("POST /api/v1/tokens", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-CSRF-Token") != "c1" {
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(restapi.ErrorBody{Error: &restapi.Error{Code: "csrf", Message: "no CSRF token"}})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(restapi.TokenCreated{Token: "nlo_t"})
	})
	mux.HandleFunc("GET /api/v1/deployments/7", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream proxy failed", http.StatusBadGateway)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()

	sc, me, err := restapi.Login(ctx, srv.URL, srv.Client(), "dev", "pw")
	if err != nil || me.User.Username != "dev" {
		t.Fatalf("login: %+v %v", me, err)
	}
	if _, err := sc.Me(ctx); err != nil {
		t.Fatalf("GET /me with the session: %v", err)
	}
	tok, err := sc.CreateToken(ctx, restapi.TokenRequest{Name: "ci"})
	if err != nil || tok.Token != "nlo_t" {
		t.Fatalf("POST /tokens with the session: %+v %v", tok, err)
	}
	tc := restapi.NewClient(srv.URL+"/", tok.Token)
	if _, err := tc.Me(ctx); err != nil {
		t.Fatalf("GET /me with the token: %v", err)
	}
	_, err = restapi.NewClient(srv.URL, "nlo_wrong").Me(ctx)
	var ae *restapi.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != "unauthenticated" {
		t.Fatalf("wrong token: %v", err)
	}
	_, err = tc.Deployment(ctx, 7)
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || ae.Code != "http" || ae.Message != "upstream proxy failed" {
		t.Fatalf("a non-API error answer: %#v", err)
	}
}
