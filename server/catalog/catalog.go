// Package catalog is the admin-maintained catalog of docs/architecture.md,
// "Pipeline graph" and "Security model": container registries (credentials sealed with server/secretbox),
// services, plugins, secrets, environments, projects and versioned pipeline
// graphs. It validates input, seals and opens encrypted values, lists tags
// through server/registry, saves pipeline versions (validated by
// server/pipeline, plugin images pinned) and resolves a pipeline version
// into the protocol.DeploySpec an agent runs. SQL stays in server/store;
// callers own transactions (so audit entries commit with the change).
package catalog

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/registry"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
)

// Catalog holds the collaborators of catalog operations.
type Catalog struct {
	Store    *store.Store
	Box      *secretbox.Box
	Registry *registry.Client
	Log      zerolog.Logger
}

// New returns a Catalog with its own registry client (30 s tag cache).
func New(st *store.Store, box *secretbox.Box, log zerolog.Logger) *Catalog {
	return &Catalog{Store: st, Box: box, Registry: registry.New(), Log: log}
}

// Associated data binding each sealed value to its row, so ciphertexts
// cannot be moved between rows.
func registryAAD(id int64) string { return fmt.Sprintf("registry:%d", id) }
func secretAAD(id int64) string   { return fmt.Sprintf("secret:%d", id) }

// NodeTokenAAD is the associated data of nodes.token_enc (used by key
// rotation; it must equal server/agents.TokenAAD, which seals the tokens).
func NodeTokenAAD(id int64) string { return fmt.Sprintf("node-token:%d", id) }

func aadOf(kind string, id int64) string {
	switch kind {
	case store.SealedSecretValue:
		return secretAAD(id)
	case store.SealedRegistryPassword:
		return registryAAD(id)
	case store.SealedNodeToken:
		return NodeTokenAAD(id)
	}
	return kind + ":" + fmt.Sprint(id)
}
