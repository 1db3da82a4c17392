package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGeneratedOnceThenReused(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir, "node-1.example.com", "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Generated || len(first.Thumbprint) != 64 {
		t.Fatalf("first start: %+v", first)
	}
	leaf, err := x509.ParseCertificate(first.Certificate.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if Thumbprint(leaf.Raw) != first.Thumbprint {
		t.Fatal("thumbprint is not the SHA-256 of the leaf DER")
	}
	if err := leaf.VerifyHostname("node-1.example.com"); err != nil {
		t.Errorf("SAN: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}

	again, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Generated || again.Thumbprint != first.Thumbprint {
		t.Fatalf("restart regenerated the certificate: %s → %s", first.Thumbprint, again.Thumbprint)
	}

	// Deleting the certificate files regenerates a different identity.
	os.Remove(filepath.Join(dir, CertFile))
	os.Remove(filepath.Join(dir, KeyFile))
	fresh, err := Ensure(dir)
	if err != nil || !fresh.Generated || fresh.Thumbprint == first.Thumbprint {
		t.Fatalf("regenerate: %+v %v", fresh, err)
	}
}

func TestHalfPresentPairIsAnError(t *testing.T) {
	dir := t.TempDir()
	if _, err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, CertFile))
	if _, err := Ensure(dir); err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Fatalf("lone key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil {
		t.Fatal("the lone key was removed")
	}
}
