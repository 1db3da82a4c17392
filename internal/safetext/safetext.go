// Package safetext decides whether text from callers can be stored and
// shown: valid UTF-8 without NUL (PostgreSQL text cannot hold either), and,
// for names people read, no control or invisible formatting characters
// (zero-width characters, bidirectional overrides) that make one name look
// like another.
package safetext

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Problems, worded to complete "<field>: …".
var (
	ErrInvalidUTF8 = errors.New("must be valid UTF-8")
	ErrNUL         = errors.New("must not contain NUL characters")
	ErrControl     = errors.New("must not contain control characters or invisible formatting characters (zero-width, bidirectional overrides)")
)

// Storable returns why s cannot be stored as text, or nil.
func Storable(s string) error {
	switch {
	case !utf8.ValidString(s):
		return ErrInvalidUTF8
	case strings.IndexByte(s, 0) >= 0:
		return ErrNUL
	}
	return nil
}

// Invisible reports whether r is a control character (Cc), an invisible
// formatting character (Cf: zero-width space/joiners, bidi embeddings,
// overrides and isolates, soft hyphen, BOM, …), a line or paragraph
// separator, or a Unicode noncharacter.
func Invisible(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) ||
		unicode.Is(unicode.Zp, r) || unicode.Is(unicode.Noncharacter_Code_Point, r) || r == utf8.RuneError
}

// Name returns why s is not acceptable as a name shown to people (a display
// name, team name or token name), or nil: it must be storable and hold no
// invisible character.
func Name(s string) error {
	if err := Storable(s); err != nil {
		return err
	}
	if strings.IndexFunc(s, Invisible) >= 0 {
		return ErrControl
	}
	return nil
}

// Text returns why s is not acceptable as free text (a description):
// storable, and no control character other than tab and newline, no
// bidirectional overrides or isolates.
func Text(s string) error {
	if err := Storable(s); err != nil {
		return err
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return r != '\t' && r != '\n' && r != '\r' && (unicode.Is(unicode.Cc, r) || bidiControl(r))
	}) >= 0 {
		return ErrControl
	}
	return nil
}

// bidiControl: embeddings and overrides (U+202A..U+202E), isolates
// (U+2066..U+2069), and the marks U+200E, U+200F, U+061C.
func bidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}
