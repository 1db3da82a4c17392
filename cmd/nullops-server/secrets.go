package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/traefik/paerser/cli"

	"github.com/nullops/nullops/internal/confload"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/config"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
)

// secretsCommand is `nullops-server secrets rotate-key`: after setting a new
// secret.key (NULLOPS_SECRET_KEY) and moving the previous key to
// secret.oldkeys, it re-encrypts every secret value, registry password and
// node token under the new key in one transaction. Afterwards the old key
// can be dropped from secret.oldkeys.
func secretsCommand() *cli.Command {
	secrets := &cli.Command{
		Name:        "secrets",
		Description: "Manage encrypted values.",
	}
	cfg := config.Defaults()
	rotate := confload.Command("rotate-key",
		"Re-encrypt every secret, registry password and node token under secret.key; values sealed with a key in secret.oldkeys are opened with it.",
		cfg, nil, func(_ []string) error { return rotateKey(cfg, os.Stdout) })
	_ = secrets.AddCommand(rotate)
	return secrets
}

func rotateKey(cfg *config.Config, out io.Writer) error {
	box, err := secretbox.New(cfg.Secret.Key, cfg.Secret.OldKeys...)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := store.Migrate(ctx, cfg.Database.URL); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	st, err := store.Open(ctx, cfg.Database.URL, 2)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer st.Close()
	rep, err := catalog.RotateKeys(ctx, st, box)
	if err != nil {
		return err
	}
	kinds := make([]string, 0, len(rep.Reencrypted))
	total := 0
	for k, n := range rep.Reencrypted {
		kinds = append(kinds, k)
		total += n
	}
	sort.Strings(kinds)
	fmt.Fprintf(out, "re-encrypted %d values under key %s", total, box.CurrentKeyID())
	for _, k := range kinds {
		fmt.Fprintf(out, "; %s: %d", k, rep.Reencrypted[k])
	}
	fmt.Fprintf(out, "; %d already used it\n", rep.Current)
	return nil
}
