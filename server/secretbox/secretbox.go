// Package secretbox encrypts secret values at rest with AES-256-GCM. Every
// ciphertext is stored with the id of the key that sealed it, so keys can be
// rotated: Open accepts the current and old keys, Seal uses the current one.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Box seals with the current key and opens with any known key.
type Box struct {
	currentID string
	keys      map[string]cipher.AEAD
}

// KeyID derives the public id of a key: the first 8 bytes of SHA-256 of the
// key, hex. It identifies, never reveals, the key.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// New builds a Box from base64 keys; the first is current.
func New(current string, old ...string) (*Box, error) {
	b := &Box{keys: map[string]cipher.AEAD{}}
	for i, k := range append([]string{current}, old...) {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: not base64: %w", i, err)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("key %d: %d bytes, want 32", i, len(raw))
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		id := KeyID(raw)
		if i == 0 {
			b.currentID = id
		}
		b.keys[id] = aead
	}
	return b, nil
}

// CurrentKeyID is the id Seal writes.
func (b *Box) CurrentKeyID() string { return b.currentID }

// Seal encrypts plaintext with a random nonce; the result is nonce||ciphertext.
// aad binds the value to its owner (e.g. "secret:42") so ciphertexts cannot be
// swapped between rows.
func (b *Box) Seal(plaintext []byte, aad string) (ciphertext []byte, keyID string, err error) {
	aead := b.keys[b.currentID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, []byte(aad)), b.currentID, nil
}

// ErrUnknownKey means the value was sealed with a key this Box lacks.
var ErrUnknownKey = errors.New("sealed with an unknown key")

// Open decrypts a value sealed under keyID with the same aad.
func (b *Box) Open(ciphertext []byte, keyID, aad string) ([]byte, error) {
	aead, ok := b.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("%w %s: add it to secret.oldkeys", ErrUnknownKey, keyID)
	}
	if len(ciphertext) < aead.NonceSize() {
		return nil, errors.New("ciphertext too short")
	}
	nonce, ct := ciphertext[:aead.NonceSize()], ciphertext[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return pt, nil
}
