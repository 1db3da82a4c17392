package dynconfig

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on rules and host names.
const (
	MaxRuleLength  = 16 << 10
	MaxRuleHosts   = 256
	maxRuleDepth   = 16
	MaxLabelLength = 63
	MaxHostLength  = 253
)

// HostRule renders a Traefik rule matching exactly the given hosts:
// Host(`a`) for one host, Host(`a`) || Host(`b`) for several (the form both
// Traefik v2 and v3 accept).
func HostRule(hosts ...string) string {
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = "Host(`" + h + "`)"
	}
	return strings.Join(parts, " || ")
}

// ParseHostRule returns the hosts a rule matches. It accepts what NullOps and
// hand-written Traefik configurations use for host routing: Host(`a`),
// Host(`a`, `b`) (Traefik v2), alternatives joined by || and parentheses
// around them, with back-quoted or double-quoted names. Any other matcher
// (PathPrefix, &&, HostRegexp, ...) is an error, so a route whose meaning the
// ingress cannot honour is reported instead of being served too broadly.
// Hosts are lower-cased and must be valid DNS names.
func ParseHostRule(rule string) ([]string, error) {
	if len(rule) > MaxRuleLength {
		return nil, fmt.Errorf("rule is longer than %d bytes", MaxRuleLength)
	}
	p := &ruleParser{s: rule}
	hosts, err := p.alternatives(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, p.errorf("unexpected %q", p.rest())
	}
	// Duplicates are harmless; drop them.
	seen := make(map[string]bool, len(hosts))
	out := hosts[:0]
	for _, h := range hosts {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}

type ruleParser struct {
	s     string
	i     int
	hosts int
}

func (p *ruleParser) errorf(format string, args ...any) error {
	return fmt.Errorf("rule %s: at byte %d: %s", quoteShort(p.s), p.i, fmt.Sprintf(format, args...))
}

func (p *ruleParser) rest() string {
	r := p.s[p.i:]
	if len(r) > 20 {
		r = r[:20] + "..."
	}
	return r
}

func (p *ruleParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

// alternatives := term { "||" term }
func (p *ruleParser) alternatives(depth int) ([]string, error) {
	if depth > maxRuleDepth {
		return nil, p.errorf("too deeply nested")
	}
	hosts, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	for {
		p.space()
		if !strings.HasPrefix(p.s[p.i:], "||") {
			return hosts, nil
		}
		p.i += 2
		more, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, more...)
	}
}

// term := "(" alternatives ")" | "Host" "(" name { "," name } ")"
func (p *ruleParser) term(depth int) ([]string, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, p.errorf("expected Host(...)")
	}
	if p.s[p.i] == '(' {
		p.i++
		hosts, err := p.alternatives(depth + 1)
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errorf("expected )")
		}
		p.i++
		return hosts, nil
	}
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z') {
		p.i++
	}
	if ident := p.s[start:p.i]; ident != "Host" {
		p.i = start
		if strings.HasPrefix(p.s[p.i:], "&&") {
			return nil, p.errorf("&& is not supported (only Host matchers joined by ||)")
		}
		if ident == "" {
			return nil, p.errorf("expected Host(...), found %q", p.rest())
		}
		return nil, p.errorf("unsupported matcher %q (only Host(`name`) is supported)", ident)
	}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '(' {
		return nil, p.errorf("expected ( after Host")
	}
	p.i++
	var hosts []string
	for {
		p.space()
		h, err := p.name()
		if err != nil {
			return nil, err
		}
		p.hosts++
		if p.hosts > MaxRuleHosts {
			return nil, p.errorf("more than %d hosts", MaxRuleHosts)
		}
		hosts = append(hosts, h)
		p.space()
		if p.i >= len(p.s) {
			return nil, p.errorf("expected , or )")
		}
		if p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.s[p.i] == ')' {
			p.i++
			return hosts, nil
		}
		return nil, p.errorf("expected , or ) after host name")
	}
}

// name := "`" host "`" | '"' host '"'
func (p *ruleParser) name() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '`' && p.s[p.i] != '"') {
		return "", p.errorf("expected a host name in back quotes")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated host name")
	}
	raw := p.s[p.i+1 : p.i+1+end]
	h := strings.ToLower(raw)
	if err := CheckHostname(h); err != nil {
		return "", p.errorf("%v", err)
	}
	p.i += end + 2
	return h, nil
}

// CheckHostname reports whether h is a valid lower-case DNS name: 1 to 253
// bytes, dot-separated labels of 1 to 63 letters, digits or '-', not
// starting or ending with '-'. The error says which label is wrong.
func CheckHostname(h string) error {
	if h == "" {
		return errors.New("host name is empty")
	}
	if len(h) > MaxHostLength {
		return fmt.Errorf("host name %s is %d characters long; DNS allows at most %d", quoteShort(h), len(h), MaxHostLength)
	}
	for label := range strings.SplitSeq(h, ".") {
		if err := CheckLabel(label); err != nil {
			return fmt.Errorf("host name %s: %w", quoteShort(h), err)
		}
	}
	return nil
}

// CheckLabel reports whether l is a valid lower-case DNS label.
func CheckLabel(l string) error {
	if l == "" {
		return errors.New("has an empty label")
	}
	if len(l) > MaxLabelLength {
		return fmt.Errorf("label %q is %d characters long; a DNS label allows at most %d", l, len(l), MaxLabelLength)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %s may only contain a-z, 0-9 and '-'", quoteShort(l))
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q must not start or end with '-'", l)
	}
	return nil
}

func quoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}
