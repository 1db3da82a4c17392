package auth

import (
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters; they are encoded into every hash, so
// changing them only affects new hashes (old ones still verify and are
// re-hashed at the next successful login).
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams follow the OWASP password storage recommendation for
// argon2id (m=46 MiB, t=1, p=1) with a 16-byte salt and a 32-byte key.
var DefaultParams = Params{Memory: 46 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Password length limits. The upper bound keeps hashing cost bounded.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 1024
)

//go:embed common-passwords.txt
var commonPasswordsFile string

// commonPasswords are refused as new passwords (compared in lower case).
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonPasswordsFile, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			m[l] = true
		}
	}
	return m
}()

// IsCommonPassword reports whether pw is on the embedded list of common
// passwords (case-insensitive).
func IsCommonPassword(pw string) bool { return commonPasswords[strings.ToLower(pw)] }

// CheckPassword returns why a new password is unacceptable, or nil. The
// messages complete "password: …" for a field error.
func CheckPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw) || strings.ContainsRune(pw, 0):
		return errors.New("must be valid UTF-8 text without NUL characters")
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return fmt.Errorf("must be at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("must be at most %d bytes", MaxPasswordLen)
	case strings.TrimSpace(pw) == "":
		return errors.New("must not be only whitespace")
	case strings.Count(pw, pw[:utf8.RuneLen([]rune(pw)[0])]) == utf8.RuneCountInString(pw):
		return errors.New("must not be one character repeated")
	case IsCommonPassword(pw):
		return errors.New("is one of the most common passwords; choose another")
	}
	return nil
}

var b64 = base64.RawStdEncoding

// HashPassword returns the PHC-style encoding
// $argon2id$v=19$m=<KiB>,t=<iterations>,p=<threads>$<salt>$<key> (unpadded
// standard base64), the format of the argon2 reference implementation.
func HashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Bounds on parameters read back from a stored hash, so a corrupt row
// cannot make verification allocate gigabytes.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
)

// ErrBadHash is returned for a stored hash that cannot be parsed.
var ErrBadHash = errors.New("stored password hash is not a valid argon2id encoding")

// DecodeHash parses an encoded hash into its parameters, salt and key.
func DecodeHash(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, ErrBadHash
	}
	var p Params
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || n != 3 {
		return Params{}, nil, nil, ErrBadHash
	}
	if p.Memory == 0 || p.Memory > maxMemoryKiB || p.Time == 0 || p.Time > maxTime || p.Threads == 0 {
		return Params{}, nil, nil, ErrBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, ErrBadHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return Params{}, nil, nil, ErrBadHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches the encoded hash, in time that
// does not depend on where the two differ. stale is true when the hash was
// made with parameters other than want (re-hash it after a successful login).
func VerifyPassword(encoded, pw string, want Params) (ok, stale bool, err error) {
	p, salt, key, err := DecodeHash(encoded)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxPasswordLen {
		pw = pw[:MaxPasswordLen]
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	ok = subtle.ConstantTimeCompare(got, key) == 1
	stale = p != want
	return ok, stale, nil
}
