package executor

import (
	"fmt"
	"regexp"
	"strings"
)

var refRe = regexp.MustCompile(`\$\{([A-Za-z0-9_.\-]+)\}`)

// scope resolves ${secrets.NAME} and ${steps.X.outputs.Y} in memory.
// Other ${...} expressions (e.g. shell variables in a command) are left as
// they are.
type scope struct {
	secrets map[string]string
	outputs map[string]map[string]string // by step id
	// visible are the steps a node may reference (its transitive
	// predecessors); nil allows every step with outputs.
	visible map[string]bool
}

func (s scope) expand(in string) (string, error) {
	var firstErr error
	out := refRe.ReplaceAllStringFunc(in, func(m string) string {
		ref := m[2 : len(m)-1]
		switch {
		case strings.HasPrefix(ref, "secrets."):
			name := strings.TrimPrefix(ref, "secrets.")
			v, ok := s.secrets[name]
			if !ok && firstErr == nil {
				firstErr = fmt.Errorf("unknown secret %q in %s", name, m)
			}
			return v
		case strings.HasPrefix(ref, "steps."):
			step, key, ok := strings.Cut(strings.TrimPrefix(ref, "steps."), ".outputs.")
			if !ok || step == "" || key == "" {
				if firstErr == nil {
					firstErr = fmt.Errorf("malformed reference %s (want ${steps.ID.outputs.KEY})", m)
				}
				return ""
			}
			if s.visible != nil && !s.visible[step] {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s refers to step %q, which is not a predecessor", m, step)
				}
				return ""
			}
			v, ok := s.outputs[step][key]
			if !ok && firstErr == nil {
				firstErr = fmt.Errorf("step %q has no output %q (referenced as %s)", step, key, m)
			}
			return v
		}
		return m
	})
	return out, firstErr
}

// referencedSecrets adds to names every secret that a string anywhere
// inside v (a JSON-like value) references as ${secrets.NAME}.
func referencedSecrets(v any, names map[string]bool) {
	switch x := v.(type) {
	case string:
		for _, m := range refRe.FindAllStringSubmatch(x, -1) {
			if name, ok := strings.CutPrefix(m[1], "secrets."); ok {
				names[name] = true
			}
		}
	case map[string]any:
		for _, e := range x {
			referencedSecrets(e, names)
		}
	case []any:
		for _, e := range x {
			referencedSecrets(e, names)
		}
	}
}

// expandMap expands every value of m.
func (s scope) expandMap(m map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for k, v := range m {
		x, err := s.expand(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

// expandAny expands strings anywhere inside a JSON-like value.
func (s scope) expandAny(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return s.expand(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := s.expandAny(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := s.expandAny(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// redactor hides secret values. Values shorter than minSecretLen are not
// redacted (they would mangle every log line); docs/agent.md says so.
type redactor struct{ pairs [][2]string } // value, name; longest first

const minSecretLen = 4

func newRedactor(secrets map[string]string) redactor {
	var r redactor
	for name, v := range secrets {
		if len(v) >= minSecretLen {
			r.pairs = append(r.pairs, [2]string{v, name})
		}
	}
	// Longest first so a secret containing another is replaced whole.
	for i := 1; i < len(r.pairs); i++ {
		for j := i; j > 0 && len(r.pairs[j][0]) > len(r.pairs[j-1][0]); j-- {
			r.pairs[j], r.pairs[j-1] = r.pairs[j-1], r.pairs[j]
		}
	}
	return r
}

// mask replaces secret values with "***" (logs, messages).
func (r redactor) mask(s string) string {
	for _, p := range r.pairs {
		s = strings.ReplaceAll(s, p[0], "***")
	}
	return s
}

// placeholder replaces secret values with ${secrets.NAME}, so outputs can
// be stored and reported without the value and expanded again later.
func (r redactor) placeholder(s string) string {
	for _, p := range r.pairs {
		s = strings.ReplaceAll(s, p[0], "${secrets."+p[1]+"}")
	}
	return s
}

func (r redactor) placeholderMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = r.placeholder(v)
	}
	return out
}
