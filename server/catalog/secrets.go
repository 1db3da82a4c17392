package catalog

import (
	"context"
	"fmt"

	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

// createSecret validates and stores a new secret, sealed with associated
// data "secret:<id>". projectID nil makes it global.
func (c *Catalog) createSecret(ctx context.Context, q store.Querier, name string, projectID *int64, value string, actor *int64) (store.Secret, error) {
	if err := ValidateSecret(name, &value); err != nil {
		return store.Secret{}, err
	}
	if projectID != nil {
		if _, err := store.GetProject(ctx, q, *projectID); err != nil {
			return store.Secret{}, errs.Fields{"project_id": fmt.Sprintf("no project with id %d", *projectID)}.Err()
		}
	}
	id, err := store.CreateSecret(ctx, q, name, projectID, actor)
	if err != nil {
		return store.Secret{}, err
	}
	if err := c.sealSecret(ctx, q, id, value, actor); err != nil {
		return store.Secret{}, err
	}
	return store.GetSecret(ctx, q, id)
}

// setSecret replaces a secret's value.
func (c *Catalog) setSecret(ctx context.Context, q store.Querier, id int64, value string, actor *int64) (store.Secret, error) {
	if len(value) > MaxSecretBytes {
		return store.Secret{}, errs.Fields{"value": fmt.Sprintf("at most %d bytes", MaxSecretBytes)}.Err()
	}
	if _, err := store.GetSecret(ctx, q, id); err != nil {
		return store.Secret{}, err
	}
	if err := c.sealSecret(ctx, q, id, value, actor); err != nil {
		return store.Secret{}, err
	}
	return store.GetSecret(ctx, q, id)
}

func (c *Catalog) sealSecret(ctx context.Context, q store.Querier, id int64, value string, actor *int64) error {
	enc, keyID, err := c.Box.Seal([]byte(value), secretAAD(id))
	if err != nil {
		return fmt.Errorf("seal secret: %w", err)
	}
	return store.SetSecretValue(ctx, q, id, store.Sealed{Ciphertext: enc, KeyID: keyID}, actor)
}

// OpenSecrets decrypts, in memory, the secrets visible to a project whose
// names are in names (global ones overridden by the project's).
func (c *Catalog) OpenSecrets(ctx context.Context, q store.Querier, projectID int64, names []string) (map[string]string, error) {
	if len(names) == 0 {
		return map[string]string{}, nil
	}
	sealed, err := store.ProjectSecrets(ctx, q, projectID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		s, ok := sealed[n]
		if !ok {
			return nil, fmt.Errorf("secret %q: %w", n, store.ErrNotFound)
		}
		pt, err := c.Box.Open(s.Value.Ciphertext, s.Value.KeyID, secretAAD(s.ID))
		if err != nil {
			return nil, fmt.Errorf("open secret %q: %w", n, err)
		}
		out[n] = string(pt)
	}
	return out, nil
}
