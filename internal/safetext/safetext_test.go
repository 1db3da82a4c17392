package safetext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestName(t *testing.T) {
	for s, want := range map[string]error{
		"QA team":            nil,
		"Équipe Zürich – 東京": nil,
		"ci token 🚀":         nil,
		"bad\x00nul":         ErrNUL,
		"bad \xff utf8":      ErrInvalidUTF8,
		"tab\there":          ErrControl,
		"new\nline":          ErrControl,
		"esc\x1b[31m":        ErrControl,
		"del\x7f":            ErrControl,
		"c1\u0085":           ErrControl,
		"zero\u200bwidth":    ErrControl,
		"zw\u200djoiner":     ErrControl,
		"rtl\u202eoverride":  ErrControl,
		"isolate\u2066x":     ErrControl,
		"bom\ufeff":          ErrControl,
		"soft\u00adhyphen":   ErrControl,
		"line\u2028sep":      ErrControl,
		"nonchar\ufffe":      ErrControl,
		"replacement\ufffd":  ErrControl,
	} {
		if got := Name(s); got != want {
			t.Errorf("Name(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestText(t *testing.T) {
	for s, want := range map[string]error{
		"two\nlines\tand tab": nil,
		"zero\u200bwidth ok":  nil, // in prose, joiners are needed by some scripts
		"rtl\u202eoverride":   ErrControl,
		"bell\x07":            ErrControl,
		"nul\x00":             ErrNUL,
		"\xc3\x28":            ErrInvalidUTF8,
	} {
		if got := Text(s); got != want {
			t.Errorf("Text(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzName: whatever Name accepts is valid UTF-8 without NUL, control,
// format or separator characters; Text and Storable accept it too.
func FuzzName(f *testing.F) {
	for _, s := range []string{"", "ok", "a\x00b", "\xff", "a\u200bb", "\u202e", "Zürich", "\t", "\U0010FFFF", "\ufeff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Name(s) != nil {
			return
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || bidiControl(r) {
				t.Fatalf("accepted %q with %U", s, r)
			}
		}
		if Text(s) != nil || Storable(s) != nil {
			t.Fatalf("Name accepts %q but Text or Storable does not", s)
		}
	})
}
