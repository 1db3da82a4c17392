package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxBodyBytes bounds JSON request bodies.
const MaxBodyBytes = 4 << 20

// DecodeJSON decodes exactly one JSON value from r into v, rejecting unknown
// fields, trailing data and oversized bodies with a message a user can act on.
func DecodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, MaxBodyBytes+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return errors.New("request body is empty; send a JSON object")
		case errors.As(err, &syn):
			return fmt.Errorf("request body is not valid JSON (at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			if typ.Field != "" {
				return fmt.Errorf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
			}
			return fmt.Errorf("request body must be %s, not %s", typ.Type, typ.Value)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("request body is truncated JSON")
		}
		return fmt.Errorf("request body: %v", err)
	}
	// Anything but whitespace after the value (including a stray '}' or
	// ']', which dec.More does not report) is an error.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("request body has data after the JSON object")
	}
	return nil
}
