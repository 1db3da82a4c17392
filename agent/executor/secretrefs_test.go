package executor

import (
	"slices"
	"strings"
	"testing"
)

// TestReferencedSecrets: the secrets a plugin step receives are the
// ${secrets.NAME} references anywhere in its params, nothing else.
func TestReferencedSecrets(t *testing.T) {
	for _, c := range []struct {
		params any
		want   []string
	}{
		{nil, nil},
		{"plain", nil},
		{"${secrets.a}", []string{"a"}},
		{"x${secrets.a}y${secrets.b_2}z${secrets.a}", []string{"a", "b_2"}},
		{"$secrets.a {secrets.b} ${ secrets.c} ${secrets.}", []string{""}},
		{"${steps.s.outputs.secrets.x} ${HOME} ${secretsx.y}", nil},
		{map[string]any{"k": []any{"a", map[string]any{"deep": "${secrets.deep-one}"}}, "n": 3.0}, []string{"deep-one"}},
		{map[string]any{"${secrets.key}": "keys are not expanded"}, nil},
	} {
		names := map[string]bool{}
		referencedSecrets(c.params, names)
		var got []string
		for n := range names {
			got = append(got, n)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("referencedSecrets(%#v) = %q, want %q", c.params, got, c.want)
		}
	}
}

// FuzzReferencedSecrets: every name found is written as ${secrets.NAME}
// in the text, and expanding the text with only the secrets found never
// misses one (a step gets every secret its params expand, and no other).
func FuzzReferencedSecrets(f *testing.F) {
	for _, s := range []string{"", "${secrets.a}", "${secrets.a}${secrets.b}", "${secrets.}", "$${secrets.x}}", "${steps.a.outputs.b}", "${secrets.a.b-c}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names := map[string]bool{}
		referencedSecrets(map[string]any{"p": []any{s}}, names)
		only := map[string]string{}
		for n := range names {
			if !strings.Contains(s, "${secrets."+n+"}") {
				t.Fatalf("%q: found %q, which it does not reference", s, n)
			}
			only[n] = "value-of-" + n
		}
		out, err := scope{secrets: only, outputs: map[string]map[string]string{}}.expand(s)
		if err != nil && strings.Contains(err.Error(), "unknown secret") {
			t.Fatalf("%q: expanding with the secrets found (%v): %v", s, names, err)
		}
		_ = out
	})
}
