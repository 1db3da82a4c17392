package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// MaxSchemaBytes bounds a plugin's parameter schema.
const MaxSchemaBytes = 256 << 10

// CompileSchema compiles a plugin's parameter JSON schema. An empty document
// or {} accepts any parameters. Schemas must be self-contained: $ref to
// files or URLs is refused (no loader is installed).
func CompileSchema(raw []byte) (*jsonschema.Schema, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if len(raw) > MaxSchemaBytes {
		return nil, fmt.Errorf("schema is %d bytes; at most %d are allowed", len(raw), MaxSchemaBytes)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema is not valid JSON: %v", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		if _, isBool := doc.(bool); !isBool {
			return nil, errors.New("schema must be a JSON object (or true/false)")
		}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no file or network access
	c.DefaultDraft(jsonschema.Draft2020)
	const loc = "urn:nullops:plugin-params"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("schema: %v", err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("schema is not a valid JSON schema: %s", strings.ReplaceAll(err.Error(), loc, "schema"))
	}
	return sch, nil
}

// schemaProblems validates params against sch and returns one message per
// failing location, keyed by the location below params ("" = params
// itself). Failures located at a string that contains a template reference
// are skipped: its value is only known at deploy time.
func schemaProblems(sch *jsonschema.Schema, params map[string]any) map[string]string {
	var inst any = map[string]any{}
	if params != nil {
		inst = normalize(params)
	}
	err := sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return map[string]string{"": err.Error()}
	}
	out := map[string][]string{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		if _, ok := e.ErrorKind.(*kind.Group); ok {
			return
		}
		if s, ok := valueAt(inst, e.InstanceLocation).(string); ok && strings.Contains(s, "${") {
			return
		}
		key := strings.Join(e.InstanceLocation, ".")
		out[key] = append(out[key], e.ErrorKind.LocalizedString(printer))
	}
	walk(ve)
	res := make(map[string]string, len(out))
	for k, msgs := range out {
		sort.Strings(msgs)
		res[k] = strings.Join(dedupe(msgs), "; ")
	}
	return res
}

// normalize converts a decoded params tree into the value types the schema
// validator understands (it already accepts float64, maps and slices; this
// only copies so validation never sees caller mutations).
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = normalize(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = normalize(x)
		}
		return s
	}
	return v
}

func valueAt(v any, path []string) any {
	for _, tok := range path {
		switch t := v.(type) {
		case map[string]any:
			v = t[tok]
		case []any:
			i := 0
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
