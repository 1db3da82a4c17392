// Package registryconf writes the configuration of a local docker-registry
// (Debian's package) with one htpasswd user: what the tests and `make demo`
// both run.
package registryconf

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
)

// Write puts htpasswd and config.yml into dir for a registry serving addr
// with images under dir/data, and returns the config's path. cost is the
// bcrypt cost of the password hash (bcrypt.MinCost keeps tests fast).
func Write(dir, addr, realm, username, password string, cost int) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash registry password: %w", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(username+":"+string(hash)+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write htpasswd: %w", err)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  htpasswd:
    realm: %s
    path: %s
`, filepath.Join(dir, "data"), addr, realm, htpasswd)
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write registry config: %w", err)
	}
	return path, nil
}
