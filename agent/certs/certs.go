// Package certs gives the agent its TLS identity: an ECDSA P-256 self-signed
// certificate generated into the data dir on first start and reused on every
// restart. The control plane pins the certificate by its thumbprint (hex
// SHA-256 of the leaf's DER), so regenerating it (deleting the files) makes
// the node "untrusted" until an admin approves the new thumbprint.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside the data dir.
const (
	CertFile = "agent.crt"
	KeyFile  = "agent.key"
)

// Validity of a generated certificate. Pinning, not expiry, is what the
// control plane checks; a long validity avoids surprise regenerations.
const Validity = 20 * 365 * 24 * time.Hour

// Identity is the agent's certificate with its thumbprint.
type Identity struct {
	Certificate tls.Certificate
	Thumbprint  string // hex SHA-256 of the leaf certificate's DER
	Generated   bool   // created by this call (first start or regenerated)
}

// Thumbprint returns the hex SHA-256 of a DER certificate.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Ensure loads the certificate and key from dir, generating both when
// neither exists. A half-present pair (one file missing) is an error rather
// than a silent regeneration, so a partial copy of a data dir is noticed.
func Ensure(dir string, hostnames ...string) (Identity, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return load(certPath, keyPath)
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		if err := generate(certPath, keyPath, hostnames); err != nil {
			return Identity{}, err
		}
		id, err := load(certPath, keyPath)
		id.Generated = true
		return id, err
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return Identity{}, fmt.Errorf("stat %s: %w", certPath, certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return Identity{}, fmt.Errorf("stat %s: %w", keyPath, keyErr)
	default:
		return Identity{}, fmt.Errorf("only one of %s and %s exists in %s: delete the other to generate a new certificate (the node then needs its new thumbprint approved)", CertFile, KeyFile, dir)
	}
}

func load(certPath, keyPath string) (Identity, error) {
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return Identity{}, fmt.Errorf("load agent certificate: %w", err)
	}
	if len(cert.Certificate) == 0 {
		return Identity{}, fmt.Errorf("load agent certificate: %s holds no certificate", certPath)
	}
	return Identity{Certificate: cert, Thumbprint: Thumbprint(cert.Certificate[0])}, nil
}

func generate(certPath, keyPath string, hostnames []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("serial: %w", err)
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "nullops-agent", Organization: []string{"NullOps"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hostnames {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		} else {
			tpl.DNSNames = append(tpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	// Key first: a crash between the two writes leaves no certificate, and
	// the next start reports the lone key instead of pairing a new
	// certificate with it silently.
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeAtomic writes data to a temporary file in the same directory, syncs
// it and renames it into place.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
