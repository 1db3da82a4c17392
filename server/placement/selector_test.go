package placement

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"zone": "eu-1", "gpu": "true", "disk_gb": "500", "tier": "qa"}
	cases := []struct {
		name string
		sel  string
		want bool
	}{
		{"empty matches all", `{}`, true},
		{"null matches all", `null`, true},
		{"match_labels hit", `{"match_labels":{"zone":"eu-1","gpu":"true"}}`, true},
		{"match_labels wrong value", `{"match_labels":{"zone":"us-1"}}`, false},
		{"match_labels missing key", `{"match_labels":{"arch":"arm64"}}`, false},
		{"In hit", `{"expressions":[{"key":"zone","operator":"In","values":["us-1","eu-1"]}]}`, true},
		{"In miss", `{"expressions":[{"key":"zone","operator":"In","values":["us-1"]}]}`, false},
		{"In missing label", `{"expressions":[{"key":"arch","operator":"In","values":["amd64"]}]}`, false},
		{"NotIn hit", `{"expressions":[{"key":"zone","operator":"NotIn","values":["us-1"]}]}`, true},
		{"NotIn miss", `{"expressions":[{"key":"zone","operator":"NotIn","values":["eu-1"]}]}`, false},
		{"NotIn missing label matches", `{"expressions":[{"key":"arch","operator":"NotIn","values":["arm64"]}]}`, true},
		{"Exists", `{"expressions":[{"key":"gpu","operator":"Exists"}]}`, true},
		{"Exists missing", `{"expressions":[{"key":"arch","operator":"Exists"}]}`, false},
		{"NotExists", `{"expressions":[{"key":"arch","operator":"NotExists"}]}`, true},
		{"NotExists present", `{"expressions":[{"key":"gpu","operator":"NotExists"}]}`, false},
		{"Gt hit", `{"expressions":[{"key":"disk_gb","operator":"Gt","values":["100"]}]}`, true},
		{"Gt equal is not greater", `{"expressions":[{"key":"disk_gb","operator":"Gt","values":["500"]}]}`, false},
		{"Lt hit", `{"expressions":[{"key":"disk_gb","operator":"Lt","values":["1000.5"]}]}`, true},
		{"Lt miss", `{"expressions":[{"key":"disk_gb","operator":"Lt","values":["10"]}]}`, false},
		{"Gt on non-numeric label", `{"expressions":[{"key":"zone","operator":"Gt","values":["1"]}]}`, false},
		{"Lt on missing label", `{"expressions":[{"key":"cores","operator":"Lt","values":["1"]}]}`, false},
		{"all terms ANDed", `{"match_labels":{"tier":"qa"},"expressions":[{"key":"gpu","operator":"Exists"},{"key":"zone","operator":"In","values":["us-1"]}]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSelector([]byte(tc.sel))
			if err != nil {
				t.Fatalf("parse %s: %v", tc.sel, err)
			}
			if got := s.Matches(labels); got != tc.want {
				t.Fatalf("%s on %v = %v, want %v", tc.sel, labels, got, tc.want)
			}
		})
	}
}

func TestSelectorValidationMessages(t *testing.T) {
	cases := []struct{ sel, wantMsg string }{
		{`{"expressions":[{"key":"zone","operator":"Near","values":["a"]}]}`, `unknown operator "Near"`},
		{`{"expressions":[{"key":"zone","operator":"In"}]}`, "operator In needs at least one value"},
		{`{"expressions":[{"key":"zone","operator":"Exists","values":["x"]}]}`, "operator Exists takes no values"},
		{`{"expressions":[{"key":"disk","operator":"Gt","values":["big"]}]}`, `operator Gt needs a number, not "big"`},
		{`{"expressions":[{"key":"disk","operator":"Lt","values":["1","2"]}]}`, "operator Lt needs exactly one number"},
		{`{"expressions":[{"key":"zone"}]}`, "operator is required"},
		{`{"expressions":[{"key":"","operator":"Exists"}]}`, "label key is empty"},
		{`{"match_labels":{"bad key":"x"}}`, `label key "bad key" may only contain`},
		{`{"match_labels":{"k":"a\u0001b"}}`, "control character"},
		{`{"matchLabels":{"k":"v"}}`, "not valid JSON"},
		{`{"match_labels":{"k":"v"}} {}`, "data after the JSON object"},
		{`[1,2]`, "not valid JSON"},
	}
	for _, tc := range cases {
		_, err := ParseSelector([]byte(tc.sel))
		if err == nil {
			t.Errorf("ParseSelector(%s) accepted an invalid selector", tc.sel)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("ParseSelector(%s) = %q, want it to mention %q", tc.sel, err, tc.wantMsg)
		}
	}
}

func TestSelectorString(t *testing.T) {
	s, err := ParseSelector([]byte(`{"match_labels":{"tier":"qa"},"expressions":[{"key":"zone","operator":"In","values":["a","b"]},{"key":"gpu","operator":"Exists"},{"key":"disk","operator":"Gt","values":["100"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "tier=qa, zone In (a,b), gpu Exists, disk Gt 100"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// FuzzParseSelector feeds arbitrary documents: parsing never panics, an
// accepted selector re-validates after a JSON round trip and evaluates
// deterministically against arbitrary labels.
func FuzzParseSelector(f *testing.F) {
	seeds := []string{
		`{}`, `null`, ``,
		`{"match_labels":{"zone":"eu-1"}}`,
		`{"expressions":[{"key":"zone","operator":"In","values":["a","b"]}]}`,
		`{"expressions":[{"key":"disk","operator":"Gt","values":["1e3"]}]}`,
		`{"expressions":[{"key":"disk","operator":"Lt","values":["NaN"]}]}`,
		`{"expressions":[{"key":"x","operator":"NotExists"}],"match_labels":{"a/b.c":""}}`,
		`{"expressions":[{"key":"x","operator":"Exists","values":[]}]}`,
		`{"match_labels":{"k":"v"}}garbage`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "zone", "eu-1")
	}
	f.Fuzz(func(t *testing.T, raw []byte, lk, lv string) {
		s, err := ParseSelector(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal accepted selector: %v", err)
		}
		s2, err := ParseSelector(b)
		if err != nil {
			t.Fatalf("accepted selector %s fails after round trip as %s: %v", raw, b, err)
		}
		labels := map[string]string{lk: lv}
		if s.Matches(labels) != s2.Matches(labels) {
			t.Fatalf("round trip changed the result for %v", labels)
		}
		if s.Empty() && !s.Matches(labels) {
			t.Fatal("empty selector must match every node")
		}
		_ = s.String()
	})
}
