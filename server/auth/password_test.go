package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHashPasswordEncodesArgon2idWithTheDefaultParameters(t *testing.T) {
	h, err := HashPassword("correct horse battery", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Fatalf("encoding %q: want $argon2id$v=19$m=47104,t=1,p=1$...", h)
	}
	p, salt, key, err := DecodeHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if p != DefaultParams || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("decoded %+v salt %d key %d", p, len(salt), len(key))
	}
	if p.Memory < 19*1024 || p.Time < 1 {
		t.Fatalf("parameters below the OWASP minimum (m=19 MiB, t=2 or m=46 MiB, t=1): %+v", p)
	}
	h2, _ := HashPassword("correct horse battery", DefaultParams)
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		ok, stale, err := VerifyPassword(h, pw, DefaultParams)
		if err != nil || ok != want || stale {
			t.Errorf("verify %q: ok=%v stale=%v err=%v, want ok=%v", pw, ok, stale, err, want)
		}
	}
}

func TestOldParametersStillVerifyAndAreStale(t *testing.T) {
	old := Params{Memory: 8 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := HashPassword("an older password", old)
	if err != nil {
		t.Fatal(err)
	}
	ok, stale, err := VerifyPassword(h, "an older password", DefaultParams)
	if err != nil || !ok || !stale {
		t.Fatalf("ok=%v stale=%v err=%v, want ok and stale", ok, stale, err)
	}
}

func TestDecodeHashRejectsMalformedEncodings(t *testing.T) {
	good, _ := HashPassword("x", Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	parts := strings.Split(good, "$")
	bad := []string{
		"", "plain", "$2a$10$bcrypthashbcrypthashbcrypthashbcrypthashbcrypthashbc",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=1024", "m=99999999", 1), // > 1 GiB
		strings.Replace(good, "t=1", "t=0", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Join(append(parts[:4:4], "!!!", parts[5]), "$"),
		strings.Join(append(parts[:5:5], ""), "$"),
		good + "$extra",
	}
	for _, b := range bad {
		if _, _, _, err := DecodeHash(b); err == nil {
			t.Errorf("DecodeHash(%q) accepted", b)
		}
		if ok, _, err := VerifyPassword(b, "x", DefaultParams); ok || err == nil {
			t.Errorf("VerifyPassword(%q) = %v, %v", b, ok, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for pw, ok := range map[string]bool{
		"short":                        false,
		"elevenchars":                  false,
		"twelve chars":                 true,
		"äöüäöüäöüäöü":                 true, // 12 runes
		strings.Repeat("xy", 512):      true,
		strings.Repeat("xy", 513):      false,
		strings.Repeat("x", 40):        false, // one character repeated
		"correct horse battery staple": false, // famous, so common
		"Password1234":                 false, // common, in any case
		"QWERTY123456":                 false,
		"123456789012":                 false,
		"             ":                false, // only whitespace
		"\t\n \u00a0\u2003         ":   false,
		"valid but \x00 NUL inside":    false,
		"invalid \xff\xfe UTF-8 here":  false,
		"a rather unusual phrase":      true,
		"zzzzzzzzzzzy":                 true,
	} {
		if err := CheckPassword(pw); (err == nil) != ok {
			t.Errorf("CheckPassword(%.20q) = %v, want ok=%v", pw, err, ok)
		}
	}
}

// FuzzDecodeHash: stored hashes are parsed before verification; any input
// must be rejected or yield bounded parameters, never panic.
func FuzzDecodeHash(f *testing.F) {
	good, _ := HashPassword("x", Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	f.Add(good)
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=-1,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := DecodeHash(s)
		if err != nil {
			return
		}
		if p.Memory == 0 || p.Memory > maxMemoryKiB || p.Time == 0 || p.Time > maxTime || p.Threads == 0 || len(salt) < 8 || len(key) < 16 || len(key) > 128 {
			t.Fatalf("accepted out-of-bounds %+v salt=%d key=%d from %q", p, len(salt), len(key), s)
		}
	})
}

func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery", DefaultParams); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCheckPassword: any input is accepted or refused with a message, never
// panics; what is accepted is valid UTF-8 without NUL, 12..1024 long, not
// only whitespace and not on the common list.
func FuzzCheckPassword(f *testing.F) {
	for _, s := range []string{"", " ", "password1234", "Password1234", "correct horse battery staple", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\xff", "äöüäöüäöüäöü", strings.Repeat("é", 12), "a rather unusual phrase"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		err := CheckPassword(pw)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty message")
			}
			return
		}
		if !utf8.ValidString(pw) || strings.ContainsRune(pw, 0) || utf8.RuneCountInString(pw) < MinPasswordLen ||
			len(pw) > MaxPasswordLen || strings.TrimSpace(pw) == "" || IsCommonPassword(pw) {
			t.Fatalf("accepted %q", pw)
		}
	})
}

func TestCommonPasswordListIsEmbeddedAndLong(t *testing.T) {
	if n := len(commonPasswords); n < 300 {
		t.Fatalf("%d common passwords embedded", n)
	}
	for pw := range commonPasswords {
		if pw != strings.ToLower(pw) || utf8.RuneCountInString(pw) < MinPasswordLen {
			t.Errorf("list entry %q is not lower case or is shorter than the minimum (dead weight)", pw)
		}
	}
}
