// Package trust is the agent's persisted record of which node token it
// accepts and of the highest control-plane connection epoch it accepted.
// It stores verifiers (protocol.TokenVerifier), never a token.
//
// The record is bound to the tokens it has known: starting the agent with a
// token the record never knew starts a new record (that token accepted, not
// revoked, epoch 0). Restarting it with a known token (the one it started
// with, one rotated away, or the current one) keeps the record, so a
// rotation or revocation received over the channel survives restarts: an
// old token stays refused, and a revoked agent stays revoked until it is
// started with a token issued after the revocation.
package trust

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nullops/nullops/protocol"
)

// FileName is the record's name inside the data dir.
const FileName = "trust.json"

// Errors of Check.
var (
	ErrWrongToken = errors.New("wrong token")
	ErrRevoked    = errors.New("the node token was revoked; start the agent with a new token")
)

// record is the file's content.
type record struct {
	// Boot is the verifier of the token the agent was started with when
	// this record began.
	Boot string `json:"boot"`
	// Verifier is the verifier of the token accepted now.
	Verifier string `json:"verifier"`
	// Retired are the verifiers of tokens rotated away (newest last).
	Retired    []string  `json:"retired,omitempty"`
	Generation int       `json:"generation,omitempty"`
	Revoked    bool      `json:"revoked,omitempty"`
	Epoch      uint64    `json:"epoch,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Store is the trust record of one data dir. It is safe for concurrent use.
type Store struct {
	path string

	mu  sync.Mutex
	rec record
}

// Open reads the record at path, or starts a new one for startToken when
// there is none or it never knew startToken. An unreadable record is an
// error (removing the file starts over).
func Open(path, startToken string) (*Store, error) {
	boot := protocol.TokenVerifier(startToken)
	s := &Store{path: path}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var r record
		if err := json.Unmarshal(b, &r); err != nil || !protocol.ValidVerifier(r.Verifier) {
			// Fail closed: starting over would accept a revoked token again.
			return nil, fmt.Errorf("%s is unreadable (remove it to trust the configured token again): %v", path, err)
		}
		if r.knows(boot) {
			s.rec = r
			return s, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	s.rec = record{Boot: boot, Verifier: boot, UpdatedAt: time.Now().UTC()}
	if err := s.save(); err != nil {
		return nil, err
	}
	return s, nil
}

// maxRetired bounds the remembered rotated-away verifiers.
const maxRetired = 16

func (r *record) knows(v string) bool {
	if v == r.Boot || v == r.Verifier {
		return true
	}
	for _, x := range r.Retired {
		if x == v {
			return true
		}
	}
	return false
}

// Check reports whether token is the one the agent accepts now (in
// constant time: both sides are hashes of equal length).
func (s *Store) Check(token string) error {
	got := protocol.TokenVerifier(token)
	s.mu.Lock()
	want, revoked := s.rec.Verifier, s.rec.Revoked
	s.mu.Unlock()
	if revoked {
		return ErrRevoked
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return ErrWrongToken
	}
	return nil
}

// Rotate makes verifier the only accepted token, persisted before it
// returns.
func (s *Store) Rotate(verifier string, generation int) error {
	if !protocol.ValidVerifier(verifier) {
		return errors.New("invalid verifier")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.rec
	if verifier != s.rec.Verifier {
		s.rec.Retired = append(append([]string{}, s.rec.Retired...), s.rec.Verifier)
		if len(s.rec.Retired) > maxRetired {
			s.rec.Retired = s.rec.Retired[len(s.rec.Retired)-maxRetired:]
		}
	}
	s.rec.Verifier, s.rec.Generation, s.rec.Revoked, s.rec.UpdatedAt = verifier, generation, false, time.Now().UTC()
	if err := s.save(); err != nil {
		s.rec = prev
		return err
	}
	return nil
}

// Revoke refuses every token from now on (until the agent is started with
// another token), persisted before it returns.
func (s *Store) Revoke() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.rec
	s.rec.Revoked, s.rec.UpdatedAt = true, time.Now().UTC()
	if err := s.save(); err != nil {
		s.rec = prev
		return err
	}
	return nil
}

// Revoked reports whether the token was revoked.
func (s *Store) Revoked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.Revoked
}

// Epoch is the highest connection epoch accepted so far.
func (s *Store) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.Epoch
}

// AcceptEpoch records epoch as the highest accepted when it is higher.
func (s *Store) AcceptEpoch(epoch uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch <= s.rec.Epoch {
		return nil
	}
	prev := s.rec
	s.rec.Epoch, s.rec.UpdatedAt = epoch, time.Now().UTC()
	if err := s.save(); err != nil {
		s.rec = prev
		return err
	}
	return nil
}

// save writes the record atomically (temporary file, fsync, rename).
func (s *Store) save() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("replace %s: %w", s.path, err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Memory is a record for token kept in memory only (tests and embedders
// without a data dir).
func Memory(token string) *Store {
	v := protocol.TokenVerifier(token)
	return &Store{rec: record{Boot: v, Verifier: v, UpdatedAt: time.Now().UTC()}}
}
