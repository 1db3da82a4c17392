package pipeline

import (
	"fmt"
	"regexp"
	"strings"
)

// Template references inside env values and string params.
//
// Grammar (the agent expands exactly these forms at run time):
//
//	${steps.<node-id>.outputs.<key>}   an output of an earlier component step
//	${secrets.<name>}                  a global or project secret
//
// Every "${" starts a reference; there is no escape. A reference that does
// not match one of the forms is a validation error.
const (
	refSteps   = "steps"
	refSecrets = "secrets"
)

var (
	// SecretNameRe is the syntax of a secret name (also enforced when a
	// secret is created).
	SecretNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,127}$`)
	outputKeyRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

// Ref is one parsed reference.
type Ref struct {
	Raw    string // including ${ and }
	Kind   string // "steps" or "secrets"
	Step   string // Kind steps: node id
	Output string // Kind steps: output key
	Secret string // Kind secrets: secret name
}

// ParseRefs finds every reference in s. It returns the references that
// parsed and one message per malformed one.
func ParseRefs(s string) (refs []Ref, problems []string) {
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			return refs, problems
		}
		rest = rest[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			problems = append(problems, fmt.Sprintf("unterminated reference %q: close it with }", "${"+truncate(rest, 40)))
			return refs, problems
		}
		body := rest[:j]
		rest = rest[j+1:]
		r, err := parseRef(body)
		if err != "" {
			problems = append(problems, err)
			continue
		}
		refs = append(refs, r)
	}
}

func parseRef(body string) (Ref, string) {
	raw := "${" + body + "}"
	parts := strings.Split(body, ".")
	switch {
	case len(parts) == 4 && parts[0] == refSteps && parts[2] == "outputs":
		if !dnsLabelRe.MatchString(parts[1]) || !outputKeyRe.MatchString(parts[3]) {
			return Ref{}, fmt.Sprintf("%s: step id must be a node id and the output key letters, digits, _ or -", truncate(raw, 80))
		}
		return Ref{Raw: raw, Kind: refSteps, Step: parts[1], Output: parts[3]}, ""
	case len(parts) == 2 && parts[0] == refSecrets:
		if !SecretNameRe.MatchString(parts[1]) {
			return Ref{}, fmt.Sprintf("%s: %q is not a valid secret name", truncate(raw, 80), truncate(parts[1], 40))
		}
		return Ref{Raw: raw, Kind: refSecrets, Secret: parts[1]}, ""
	}
	return Ref{}, fmt.Sprintf("unknown reference %s: use ${steps.<node>.outputs.<key>} or ${secrets.<name>}", truncate(raw, 80))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
