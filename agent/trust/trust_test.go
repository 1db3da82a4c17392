package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The record survives restarts with a known token, starts over with an
// unknown one, and never holds a token.
func TestRecordFollowsTheTokensItKnew(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	const a, b, c = "nullops-node_token-a-0123456789", "nullops-node_token-b-0123456789", "nullops-node_token-c-0123456789"
	s, err := Open(path, a)
	if err != nil {
		t.Fatal(err)
	}
	if s.Check(a) != nil || s.Check(b) == nil {
		t.Fatal("a fresh record accepts its start token only")
	}
	if err := s.AcceptEpoch(9); err != nil {
		t.Fatal(err)
	}
	if err := s.Rotate(verifierOf(b), 2); err != nil {
		t.Fatal(err)
	}
	for _, start := range []string{a, b} {
		s, err = Open(path, start)
		if err != nil {
			t.Fatal(err)
		}
		if s.Check(a) == nil || s.Check(b) != nil || s.Epoch() != 9 {
			t.Fatalf("restart with a known token lost the record (epoch %d)", s.Epoch())
		}
	}
	if err := s.Revoke(); err != nil {
		t.Fatal(err)
	}
	if s, _ = Open(path, a); s.Check(b) != ErrRevoked {
		t.Fatal("revocation lost on restart")
	}
	s, err = Open(path, c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Check(c) != nil || s.Check(b) == nil || s.Revoked() || s.Epoch() != 0 {
		t.Fatal("an unknown start token must start a new record")
	}
	raw, _ := os.ReadFile(path)
	for _, tok := range []string{a, b, c} {
		if strings.Contains(string(raw), tok) {
			t.Fatal("the record holds a token")
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = Open(path, a); err == nil || !strings.Contains(err.Error(), "unreadable") {
		t.Fatalf("an unreadable record must fail closed: %v", err)
	}
}

func verifierOf(tok string) string { return Memory(tok).rec.Verifier }
