package browsertest

import (
	"strings"
	"testing"
)

// TestLoginPageRendersUnderCSP loads the app logged out: the login form
// shows (the strict CSP lets the ES modules run), deep links redirect to
// login and remember where to go, and the page is usable on a phone.
func TestLoginPageRendersUnderCSP(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t, srv.URL)
	b.open("/deployments/123")
	b.waitFor("login form", `!!document.querySelector('#login-form input[name="username"]')`, 10e9)
	if got := eval[string](b, `location.pathname + location.search`); !strings.HasPrefix(got, "/login?next=%2Fdeployments%2F123") {
		t.Errorf("deep link redirected to %q, want the login page with next", got)
	}
	// Labels are wired to inputs (accessibility) and the username has focus.
	if n := b.count(`#login-form label[for]`); n < 2 {
		t.Errorf("login form has %d labels, want 2", n)
	}
	if focused := eval[string](b, `document.activeElement.name || ''`); focused != "username" {
		t.Errorf("focus on %q, want the username field", focused)
	}
	b.shot("login")
}
