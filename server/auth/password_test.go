package auth

import (
	"strings"
	"testing"
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
		strings.Repeat("x", 1024):      true,
		strings.Repeat("x", 1025):      false,
		"correct horse battery staple": true,
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
