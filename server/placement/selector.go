// Package placement decides which node of an environment runs a deployment:
// it evaluates a project's node selector against node labels and applies the
// fit rule (see Candidate.Fits: reservations strictly, other CPU use within
// the environment's overcommit, memory strictly), choosing the node with the
// most headroom. It holds no state and speaks no SQL; server/store locks the
// candidate rows and server/deploy ties both together in one transaction.
package placement

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Selector operators.
const (
	OpIn        = "In"
	OpNotIn     = "NotIn"
	OpExists    = "Exists"
	OpNotExists = "NotExists"
	OpGt        = "Gt"
	OpLt        = "Lt"
)

// Limits on a selector (it is admin input stored as JSON).
const (
	MaxSelectorTerms  = 64
	MaxSelectorValues = 64
	maxLabelKey       = 253
	maxLabelValue     = 253
)

// Selector restricts placement to nodes whose labels match every
// match_labels pair and every expression (all terms are ANDed), in the
// spirit of Kubernetes label selectors.
type Selector struct {
	MatchLabels map[string]string `json:"match_labels,omitempty"`
	Expressions []Expression      `json:"expressions,omitempty"`
}

// Expression is one requirement on a label.
//
//   - In / NotIn: the label's value is (not) one of Values; NotIn also
//     matches nodes without the label.
//   - Exists / NotExists: the label is present / absent; Values must be empty.
//   - Gt / Lt: the label's value, parsed as a number, is greater / less than
//     the single number in Values; a missing or non-numeric label never
//     matches.
type Expression struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

var labelKeyRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$`)

// ParseSelector decodes and validates a stored or submitted selector.
// An empty document ("", "null", "{}") is the empty selector, which matches
// every node.
func ParseSelector(raw []byte) (Selector, error) {
	var s Selector
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return s, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Selector{}, fmt.Errorf("node selector is not valid JSON of the form {\"match_labels\":{...},\"expressions\":[...]}: %v", err)
	}
	if dec.More() {
		return Selector{}, errors.New("node selector has data after the JSON object")
	}
	if err := s.Validate(); err != nil {
		return Selector{}, err
	}
	return s, nil
}

// Empty reports whether the selector matches every node.
func (s Selector) Empty() bool { return len(s.MatchLabels) == 0 && len(s.Expressions) == 0 }

// Validate checks keys, operators and values and names the first problem.
func (s Selector) Validate() error {
	if len(s.MatchLabels)+len(s.Expressions) > MaxSelectorTerms {
		return fmt.Errorf("node selector has %d terms; at most %d are allowed", len(s.MatchLabels)+len(s.Expressions), MaxSelectorTerms)
	}
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("match_labels: %w", err)
		}
		if err := checkValue(s.MatchLabels[k]); err != nil {
			return fmt.Errorf("match_labels[%q]: %w", k, err)
		}
	}
	for i, e := range s.Expressions {
		if err := e.validate(); err != nil {
			return fmt.Errorf("expressions[%d]: %w", i, err)
		}
	}
	return nil
}

func (e Expression) validate() error {
	if err := checkKey(e.Key); err != nil {
		return err
	}
	if len(e.Values) > MaxSelectorValues {
		return fmt.Errorf("key %q: %d values; at most %d are allowed", e.Key, len(e.Values), MaxSelectorValues)
	}
	for _, v := range e.Values {
		if err := checkValue(v); err != nil {
			return fmt.Errorf("key %q: %w", e.Key, err)
		}
	}
	switch e.Operator {
	case OpIn, OpNotIn:
		if len(e.Values) == 0 {
			return fmt.Errorf("key %q: operator %s needs at least one value", e.Key, e.Operator)
		}
	case OpExists, OpNotExists:
		if len(e.Values) != 0 {
			return fmt.Errorf("key %q: operator %s takes no values", e.Key, e.Operator)
		}
	case OpGt, OpLt:
		if len(e.Values) != 1 {
			return fmt.Errorf("key %q: operator %s needs exactly one number", e.Key, e.Operator)
		}
		if _, ok := number(e.Values[0]); !ok {
			return fmt.Errorf("key %q: operator %s needs a number, not %q", e.Key, e.Operator, e.Values[0])
		}
	case "":
		return fmt.Errorf("key %q: operator is required (one of In, NotIn, Exists, NotExists, Gt, Lt)", e.Key)
	default:
		return fmt.Errorf("key %q: unknown operator %q (use one of In, NotIn, Exists, NotExists, Gt, Lt)", e.Key, e.Operator)
	}
	return nil
}

func checkKey(k string) error {
	switch {
	case k == "":
		return errors.New("label key is empty")
	case len(k) > maxLabelKey:
		return fmt.Errorf("label key %.20q… is longer than %d characters", k, maxLabelKey)
	case !labelKeyRe.MatchString(k):
		return fmt.Errorf("label key %q may only contain letters, digits, '.', '_', '-', '/' and must start and end with a letter or digit", k)
	}
	return nil
}

func checkValue(v string) error {
	if len(v) > maxLabelValue {
		return fmt.Errorf("label value %.20q… is longer than %d characters", v, maxLabelValue)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("label value %q contains a control character", v)
		}
	}
	return nil
}

// number parses a finite decimal number.
func number(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f != f || f > 1e300 || f < -1e300 {
		return 0, false
	}
	return f, true
}

// Matches reports whether a node with these labels satisfies the selector.
// The selector must be valid.
func (s Selector) Matches(labels map[string]string) bool {
	for k, want := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != want {
			return false
		}
	}
	for _, e := range s.Expressions {
		if !e.matches(labels) {
			return false
		}
	}
	return true
}

func (e Expression) matches(labels map[string]string) bool {
	v, ok := labels[e.Key]
	switch e.Operator {
	case OpIn:
		return ok && contains(e.Values, v)
	case OpNotIn:
		return !ok || !contains(e.Values, v)
	case OpExists:
		return ok
	case OpNotExists:
		return !ok
	case OpGt, OpLt:
		if !ok || len(e.Values) != 1 {
			return false
		}
		have, ok1 := number(v)
		limit, ok2 := number(e.Values[0])
		if !ok1 || !ok2 {
			return false
		}
		if e.Operator == OpGt {
			return have > limit
		}
		return have < limit
	}
	return false
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// String renders the selector compactly for messages, e.g.
// `gpu=true, zone In (a,b), disk Gt 100`.
func (s Selector) String() string {
	if s.Empty() {
		return "(any node)"
	}
	var parts []string
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+s.MatchLabels[k])
	}
	for _, e := range s.Expressions {
		switch e.Operator {
		case OpExists, OpNotExists:
			parts = append(parts, e.Key+" "+e.Operator)
		case OpIn, OpNotIn:
			parts = append(parts, e.Key+" "+e.Operator+" ("+strings.Join(e.Values, ",")+")")
		default:
			parts = append(parts, e.Key+" "+e.Operator+" "+strings.Join(e.Values, ","))
		}
	}
	return strings.Join(parts, ", ")
}
