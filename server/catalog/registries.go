package catalog

import (
	"context"
	"fmt"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/registry"
	"github.com/nullops/nullops/server/store"
)

// RegistryInput is a registry to create or update. Password nil keeps the
// stored one (on update); "" clears it.
type RegistryInput struct {
	store.RegistryInput
	Password *string
}

// createRegistry validates and inserts a registry, sealing its password
// with associated data "registry:<id>".
func (c *Catalog) createRegistry(ctx context.Context, q store.Querier, in RegistryInput) (store.Registry, error) {
	if err := ValidateRegistry(in.RegistryInput, in.Password); err != nil {
		return store.Registry{}, err
	}
	r, err := store.CreateRegistry(ctx, q, in.RegistryInput)
	if err != nil {
		return store.Registry{}, err
	}
	if in.Password != nil && *in.Password != "" {
		if err := c.setRegistryPassword(ctx, q, r.ID, *in.Password); err != nil {
			return store.Registry{}, err
		}
		r.HasPassword = true
	}
	return r, nil
}

// updateRegistry validates and updates a registry.
func (c *Catalog) updateRegistry(ctx context.Context, q store.Querier, id int64, in RegistryInput) (store.Registry, error) {
	if err := ValidateRegistry(in.RegistryInput, in.Password); err != nil {
		return store.Registry{}, err
	}
	r, err := store.UpdateRegistry(ctx, q, id, in.RegistryInput)
	if err != nil {
		return store.Registry{}, err
	}
	if in.Password != nil {
		if *in.Password == "" {
			err = store.SetRegistryPassword(ctx, q, id, store.Sealed{})
		} else {
			err = c.setRegistryPassword(ctx, q, id, *in.Password)
		}
		if err != nil {
			return store.Registry{}, err
		}
		r.HasPassword = *in.Password != ""
	}
	c.Registry.Forget()
	return r, nil
}

func (c *Catalog) setRegistryPassword(ctx context.Context, q store.Querier, id int64, password string) error {
	enc, keyID, err := c.Box.Seal([]byte(password), registryAAD(id))
	if err != nil {
		return fmt.Errorf("seal registry password: %w", err)
	}
	return store.SetRegistryPassword(ctx, q, id, store.Sealed{Ciphertext: enc, KeyID: keyID})
}

// Endpoint loads a registry with its credentials opened in memory.
func (c *Catalog) Endpoint(ctx context.Context, q store.Querier, id int64) (registry.Endpoint, store.Registry, error) {
	r, sealed, err := store.GetRegistryWithPassword(ctx, q, id)
	if err != nil {
		return registry.Endpoint{}, store.Registry{}, err
	}
	ep := registry.Endpoint{URL: r.URL, Insecure: r.Insecure, Username: r.Username}
	if sealed.Ciphertext != nil {
		pw, err := c.Box.Open(sealed.Ciphertext, sealed.KeyID, registryAAD(id))
		if err != nil {
			return registry.Endpoint{}, store.Registry{}, fmt.Errorf("open password of registry %q: %w", r.Name, err)
		}
		ep.Password = string(pw)
	}
	return ep, r, nil
}

// auth returns the pull credentials of an endpoint (nil when anonymous).
func pullAuth(ep registry.Endpoint) *protocol.RegistryAuth {
	if ep.Username == "" && ep.Password == "" {
		return nil
	}
	return &protocol.RegistryAuth{ServerAddress: ep.ServerAddress(), Username: ep.Username, Password: ep.Password}
}

// TestRegistry checks that a stored registry answers and accepts its
// credentials.
func (c *Catalog) TestRegistry(ctx context.Context, id int64) error {
	ep, _, err := c.Endpoint(ctx, c.Store, id)
	if err != nil {
		return err
	}
	return c.Registry.Check(ctx, ep)
}

// RegistryTags lists tags of image in a stored registry matching pattern.
func (c *Catalog) RegistryTags(ctx context.Context, id int64, image, pattern string) (registry.Listing, error) {
	ep, _, err := c.Endpoint(ctx, c.Store, id)
	if err != nil {
		return registry.Listing{}, err
	}
	return c.Registry.Tags(ctx, ep, image, pattern)
}

// ServiceTags lists the tags a deployment may choose for a service: for a
// selectable service those matching its pattern, newest first; for a
// pinned one just its tag.
func (c *Catalog) ServiceTags(ctx context.Context, id int64) (store.Service, registry.Listing, error) {
	sv, err := store.GetService(ctx, c.Store, id)
	if err != nil {
		return sv, registry.Listing{}, err
	}
	if sv.TagMode == store.TagModePinned {
		return sv, registry.Listing{Tags: []string{sv.Tag}, Order: "pinned"}, nil
	}
	l, err := c.RegistryTags(ctx, sv.RegistryID, sv.Image, sv.TagPattern)
	return sv, l, err
}
