package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// TokenPrefix starts every API token, so leaked tokens are easy to grep for.
const TokenPrefix = "nlo_"

// randomString returns 32 random bytes (256 bits) as unpadded base64url.
func randomString() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashSecret is the SHA-256 under which session ids and API tokens are
// stored. (They are 256-bit random values, so a fast hash is enough.)
func HashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// NewAPIToken returns a fresh token and the prefix shown to recognise it.
func NewAPIToken() (token, prefix string, err error) {
	r, err := randomString()
	if err != nil {
		return "", "", err
	}
	token = TokenPrefix + r
	return token, token[:len(TokenPrefix)+6], nil
}

// LooksLikeAPIToken reports whether s has the shape of an API token.
func LooksLikeAPIToken(s string) bool {
	return strings.HasPrefix(s, TokenPrefix) && len(s) == len(TokenPrefix)+43
}
