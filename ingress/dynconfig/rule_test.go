package dynconfig

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHostRule(t *testing.T) {
	cases := []struct {
		rule string
		want []string
	}{
		{"Host(`web.pr-42.qa.example.com`)", []string{"web.pr-42.qa.example.com"}},
		{"Host(`A.Example.COM`)", []string{"a.example.com"}},
		{"Host(`a.example.com`, `b.example.com`)", []string{"a.example.com", "b.example.com"}},
		{"Host(`a.example.com`) || Host(`b.example.com`)", []string{"a.example.com", "b.example.com"}},
		{"  Host ( \"a.example.com\" ,`b.example.com` )||(Host(`c`) || Host(`a.example.com`)) ", []string{"a.example.com", "b.example.com", "c"}},
		{"Host(`localhost`)", []string{"localhost"}},
	}
	for _, c := range cases {
		got, err := ParseHostRule(c.rule)
		if err != nil {
			t.Errorf("ParseHostRule(%q): %v", c.rule, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseHostRule(%q) = %q, want %q", c.rule, got, c.want)
		}
	}
}

func TestParseHostRuleRejects(t *testing.T) {
	cases := map[string]string{
		"":                                "expected Host",
		"Host(`a`) && PathPrefix(`/api`)": "unexpected",
		"PathPrefix(`/`)":                 `unsupported matcher "PathPrefix"`,
		"HostRegexp(`.*`)":                `unsupported matcher "HostRegexp"`,
		"&& Host(`a`)":                    "&& is not supported",
		"Host(`a`":                        "expected , or )",
		"Host(`a)":                        "unterminated",
		"Host()":                          "expected a host name",
		"Host(`a_b.example.com`)":         "may only contain",
		"Host(`-a.example.com`)":          "must not start or end",
		"Host(`a..example.com`)":          "empty label",
		"Host(`" + strings.Repeat("x", 64) + ".example.com`)": "at most 63",
		"Host(`a`) ||": "expected Host",
		"((((((((((((((((((Host(`a`))))))))))))))))))": "too deeply nested",
	}
	for rule, want := range cases {
		_, err := ParseHostRule(rule)
		if err == nil {
			t.Errorf("ParseHostRule(%q) succeeded, want error containing %q", rule, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHostRule(%q) error %q does not contain %q", rule, err, want)
		}
	}
}

func TestHostRuleRoundTrip(t *testing.T) {
	hosts := []string{"api.pr-1.qa.example.com", "web--pr-1.qa.example.com"}
	got, err := ParseHostRule(HostRule(hosts...))
	if err != nil || !reflect.DeepEqual(got, hosts) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
}

func TestCheckHostname(t *testing.T) {
	long := strings.Repeat("a", 63)
	if err := CheckHostname(long + ".example.com"); err != nil {
		t.Errorf("63-character label refused: %v", err)
	}
	if err := CheckHostname(long + "a.example.com"); err == nil || !strings.Contains(err.Error(), "64 characters") {
		t.Errorf("64-character label: %v", err)
	}
	total := strings.Repeat(long+".", 4) + "com" // 4*64+3 = 259
	if err := CheckHostname(total); err == nil || !strings.Contains(err.Error(), "at most 253") {
		t.Errorf("259-character name: %v", err)
	}
	if err := CheckHostname("Upper.example.com"); err == nil {
		t.Error("upper case accepted; hosts are compared lower-cased")
	}
}

func TestRouterName(t *testing.T) {
	n := RouterName(42, "Web_API")
	if n != "d42-web-api" {
		t.Fatalf("RouterName = %q", n)
	}
	id, ok := ParseRouterName(n)
	if !ok || id != 42 {
		t.Fatalf("ParseRouterName(%q) = %d, %v", n, id, ok)
	}
	for _, bad := range []string{"", "d", "d-web", "dx-web", "d42", "web", "d0-web", "d99999999999999999999-x", "d-1-web"} {
		if id, ok := ParseRouterName(bad); ok {
			t.Errorf("ParseRouterName(%q) = %d, want not ok", bad, id)
		}
	}
}

func FuzzParseHostRule(f *testing.F) {
	for _, s := range []string{
		"Host(`web.pr-42.qa.example.com`)",
		"Host(`a`, `b`)",
		"Host(`a`) || Host(\"b\")",
		"(Host(`a`) || (Host(`b`)))",
		"Host(`a`) && Path(`/`)",
		"Host(`a",
		"HostRegexp(`{x:.*}`)",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rule string) {
		hosts, err := ParseHostRule(rule)
		if err != nil {
			return
		}
		if len(hosts) == 0 {
			t.Fatalf("ParseHostRule(%q) returned no hosts and no error", rule)
		}
		for _, h := range hosts {
			if err := CheckHostname(h); err != nil {
				t.Fatalf("ParseHostRule(%q) returned invalid host %q: %v", rule, h, err)
			}
		}
		// What was accepted renders back to a rule with the same hosts.
		again, err := ParseHostRule(HostRule(hosts...))
		if err != nil || !reflect.DeepEqual(again, hosts) {
			t.Fatalf("re-parse of %q: %q, %v", HostRule(hosts...), again, err)
		}
	})
}
