package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/server/api"
)

type decodeTarget struct {
	Name   string            `json:"name"`
	Count  int               `json:"count"`
	Tags   map[string]string `json:"tags"`
	Nested *struct {
		On bool `json:"on"`
	} `json:"nested"`
}

// FuzzDecodeJSON: any body either decodes to exactly one valid JSON object
// with known fields, or fails with a message — never panics, never accepts
// trailing data or unknown fields.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","count":1,"tags":{"k":"v"},"nested":{"on":true}}`, `{}`, ``, `{"name":1}`, `{"extra":1}`,
		`{"name":"a"}{"name":"b"}`, `{"name":"a"} x`, `[1,2]`, `null`, `{"name":"\ud800"}`, `{"count":1e400}`, ` {"name":"a"} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v decodeTarget
		err := api.DecodeJSON(bytes.NewReader(b), &v)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		// Whatever was accepted round-trips.
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var again decodeTarget
		if err := api.DecodeJSON(bytes.NewReader(out), &again); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
	})
}

// FuzzLoginBody: the login decoder answers 400/415 with the error shape or
// yields a non-empty username and password; never panics.
func FuzzLoginBody(f *testing.F) {
	for _, s := range []string{
		`{"username":"admin","password":"admin-password-123"}`, `{"username":"","password":""}`, `{"username":"a"}`,
		`{"username":["a"],"password":"b"}`, `{"username":"a","password":"b","remember":true}`, `not json`, ``,
		`{"username":"a\u0000b","password":"` + strings.Repeat("x", 2000) + `"}`,
	} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`username=a&password=b`), "application/x-www-form-urlencoded")
	f.Add([]byte(`{"username":"a","password":"b"}`), "text/plain")
	f.Add([]byte(`{"username":"a","password":"b"}`), "application/json; charset=utf-8")
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/auth/login", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		c := e.NewContext(req, httptest.NewRecorder())
		r, err := api.ParseLoginRequest(c)
		if err != nil {
			status, body, _ := api.ToHTTP(err)
			if (status != 400 && status != 415) || body.Message == "" {
				t.Fatalf("error %v is not a 400/415 API error", err)
			}
			return
		}
		if r.Username == "" || r.Password == "" {
			t.Fatalf("accepted empty credentials from %q", body)
		}
	})
}

// FuzzCheckJSONText: a body passes only when it is valid UTF-8 and, if it
// is JSON, no string or key in it holds NUL; a refusal names where.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"b\u0000"}`, `{"a\u0000":1}`, `{"a":["x","\u0000"]}`, `{"a":"\\u0000"}`,
		"{\"a\":\"\xff\"}", `not json \u0000`, ``, `{"a":{"b":[{"c":"\u0000"}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := api.CheckJSONText(b)
		if err != nil {
			var te *api.TextError
			if !errors.As(err, &te) || err.Error() == "" {
				t.Fatalf("error %v is not a *TextError with a message", err)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted invalid UTF-8 %q", b)
		}
		var v any
		if json.Unmarshal(b, &v) == nil && strings.Contains(fmt.Sprintf("%#v", v), `\x00`) {
			t.Fatalf("accepted NUL in %q", b)
		}
	})
}
