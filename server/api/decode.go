package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/nullops/nullops/internal/safetext"
)

// MaxBodyBytes bounds JSON request bodies.
const MaxBodyBytes = 4 << 20

// ErrBodyTooLarge: the body is over MaxBodyBytes (413).
var ErrBodyTooLarge = fmt.Errorf("request body is larger than %d MiB", MaxBodyBytes>>20)

// TextError is a string in a body that cannot be stored: invalid UTF-8 or
// a NUL character. Field is its JSON path ("" = the body as a whole).
type TextError struct {
	Field string
	Err   error
}

func (e *TextError) Error() string {
	if e.Field == "" {
		return "request body " + e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

// ReadBody reads a whole request body of at most MaxBodyBytes
// (ErrBodyTooLarge beyond).
func ReadBody(r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || len(raw) > MaxBodyBytes:
		return nil, ErrBodyTooLarge
	case err != nil:
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return raw, nil
}

// CheckJSONText returns a *TextError when raw is not valid UTF-8 or holds a
// string or key with a NUL character (written \u0000), or nil. Bodies that
// are not JSON pass (the decoder reports them).
func CheckJSONText(raw []byte) error {
	if !utf8.Valid(raw) {
		return &TextError{Err: safetext.ErrInvalidUTF8}
	}
	if !bytes.Contains(raw, []byte(`\u0000`)) {
		return nil
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	if path, ok := findNUL(v, ""); ok {
		return &TextError{Field: path, Err: safetext.ErrNUL}
	}
	return nil
}

func findNUL(v any, path string) (string, bool) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case string:
		return path, strings.IndexByte(x, 0) >= 0
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 {
				return join(strings.ReplaceAll(k, "\x00", `\u0000`)), true
			}
			if p, ok := findNUL(e, join(k)); ok {
				return p, true
			}
		}
	case []any:
		for i, e := range x {
			if p, ok := findNUL(e, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	}
	return "", false
}

// DecodeJSON decodes exactly one JSON value from r into v, rejecting unknown
// fields, trailing data, text that cannot be stored (*TextError) and
// oversized bodies (ErrBodyTooLarge) with a message a user can act on.
func DecodeJSON(r io.Reader, v any) error {
	raw, err := ReadBody(r)
	if err != nil {
		return err
	}
	if err := CheckJSONText(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
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
