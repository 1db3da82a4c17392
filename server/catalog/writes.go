package catalog

import (
	"context"

	"github.com/nullops/nullops/server/store"
)

// The catalog's writes: each validates, changes the database and records
// its audit entry by the given actor in one transaction, so an entry that
// cannot be written leaves everything as it was.

// write runs fn in a transaction.
func (c *Catalog) write(ctx context.Context, fn func(tx *store.Store) error) error {
	return c.Store.InTx(ctx, fn)
}

// CreateRegistry validates and inserts a registry (password sealed) and
// records registry.create.
func (c *Catalog) CreateRegistry(ctx context.Context, a store.Actor, in RegistryInput) (r store.Registry, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if r, err = c.createRegistry(ctx, tx, in); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("registry.create", "registry", r.ID,
			map[string]any{"name": r.Name, "url": r.URL, "username": r.Username, "password_set": r.HasPassword}))
	})
	return r, err
}

// UpdateRegistry validates and updates a registry and records registry.update.
func (c *Catalog) UpdateRegistry(ctx context.Context, a store.Actor, id int64, in RegistryInput) (r store.Registry, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if r, err = c.updateRegistry(ctx, tx, id, in); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("registry.update", "registry", r.ID,
			map[string]any{"name": r.Name, "url": r.URL, "username": r.Username, "password_changed": in.Password != nil}))
	})
	return r, err
}

// DeleteRegistry removes an unused registry and records registry.delete.
func (c *Catalog) DeleteRegistry(ctx context.Context, a store.Actor, id int64) error {
	return c.write(ctx, func(tx *store.Store) error {
		r, err := store.DeleteRegistry(ctx, tx, id)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("registry.delete", "registry", r.ID, map[string]any{"name": r.Name}))
	})
}

// CreateService validates and inserts a service and records service.create.
func (c *Catalog) CreateService(ctx context.Context, a store.Actor, in store.ServiceInput) (sv store.Service, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if err := ValidateService(ctx, tx, in); err != nil {
			return err
		}
		if sv, err = store.CreateService(ctx, tx, in); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("service.create", "service", sv.ID, map[string]any{"name": sv.Name, "image": sv.Image}))
	})
	return sv, err
}

// UpdateService validates and updates a service and records service.update.
func (c *Catalog) UpdateService(ctx context.Context, a store.Actor, id int64, in store.ServiceInput) (sv store.Service, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if err := ValidateService(ctx, tx, in); err != nil {
			return err
		}
		if sv, err = store.UpdateService(ctx, tx, id, in); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("service.update", "service", sv.ID, map[string]any{"name": sv.Name, "image": sv.Image}))
	})
	return sv, err
}

// DeleteService removes an unused service and records service.delete.
func (c *Catalog) DeleteService(ctx context.Context, a store.Actor, id int64) error {
	return c.write(ctx, func(tx *store.Store) error {
		sv, err := store.DeleteService(ctx, tx, id)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("service.delete", "service", sv.ID, map[string]any{"name": sv.Name}))
	})
}

func pluginDetail(p store.Plugin) map[string]any {
	return map[string]any{"name": p.Name, "image": p.Image + ":" + p.Tag, "docker_socket": p.DockerSocket}
}

// CreatePlugin validates and inserts a plugin and records plugin.create,
// plus plugin.docker_socket when it is given the Docker socket (root on
// the nodes gets its own entry).
func (c *Catalog) CreatePlugin(ctx context.Context, a store.Actor, in store.PluginInput) (p store.Plugin, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if err := ValidatePlugin(ctx, tx, in); err != nil {
			return err
		}
		if p, err = store.CreatePlugin(ctx, tx, in); err != nil {
			return err
		}
		if err := tx.Audit(ctx, a.Entry("plugin.create", "plugin", p.ID, pluginDetail(p))); err != nil {
			return err
		}
		if p.DockerSocket {
			return tx.Audit(ctx, a.Entry("plugin.docker_socket", "plugin", p.ID, map[string]any{"name": p.Name, "enabled": true}))
		}
		return nil
	})
	return p, err
}

// UpdatePlugin validates and updates a plugin and records plugin.update,
// plus plugin.docker_socket when its Docker socket access changes.
func (c *Catalog) UpdatePlugin(ctx context.Context, a store.Actor, id int64, in store.PluginInput) (p store.Plugin, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if err := ValidatePlugin(ctx, tx, in); err != nil {
			return err
		}
		old, err := store.GetPlugin(ctx, tx, id)
		if err != nil {
			return err
		}
		if p, err = store.UpdatePlugin(ctx, tx, id, in); err != nil {
			return err
		}
		if err := tx.Audit(ctx, a.Entry("plugin.update", "plugin", p.ID, pluginDetail(p))); err != nil {
			return err
		}
		if old.DockerSocket != p.DockerSocket {
			return tx.Audit(ctx, a.Entry("plugin.docker_socket", "plugin", p.ID, map[string]any{"name": p.Name, "enabled": p.DockerSocket}))
		}
		return nil
	})
	return p, err
}

// DeletePlugin removes an unused plugin and records plugin.delete.
func (c *Catalog) DeletePlugin(ctx context.Context, a store.Actor, id int64) error {
	return c.write(ctx, func(tx *store.Store) error {
		p, err := store.DeletePlugin(ctx, tx, id)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("plugin.delete", "plugin", p.ID, map[string]any{"name": p.Name}))
	})
}

// secretEntry is an audit entry on a secret (never its value); a project's
// secret is visible to those who see the project.
func secretEntry(a store.Actor, action string, s store.Secret) store.AuditEntry {
	e := a.Entry(action, "secret", s.ID, map[string]any{"name": s.Name, "scope": s.Scope})
	e.ProjectID = s.ProjectID
	return e
}

// CreateSecret validates and stores a new secret (sealed; projectID nil
// makes it global) and records secret.create.
func (c *Catalog) CreateSecret(ctx context.Context, a store.Actor, name string, projectID *int64, value string) (s store.Secret, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if s, err = c.createSecret(ctx, tx, name, projectID, value, a.UserID); err != nil {
			return err
		}
		return tx.Audit(ctx, secretEntry(a, "secret.create", s))
	})
	return s, err
}

// SetSecret replaces a secret's value and records secret.update.
func (c *Catalog) SetSecret(ctx context.Context, a store.Actor, id int64, value string) (s store.Secret, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if s, err = c.setSecret(ctx, tx, id, value, a.UserID); err != nil {
			return err
		}
		return tx.Audit(ctx, secretEntry(a, "secret.update", s))
	})
	return s, err
}

// DeleteSecret removes a secret and records secret.delete.
func (c *Catalog) DeleteSecret(ctx context.Context, a store.Actor, id int64) error {
	return c.write(ctx, func(tx *store.Store) error {
		s, err := store.DeleteSecret(ctx, tx, id)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, secretEntry(a, "secret.delete", s))
	})
}

// environmentEntry is an audit entry on environment e, visible to those who
// see it (keep is false once it is gone: then the entry is admin-only).
func environmentEntry(a store.Actor, action string, e store.Environment, keep bool) store.AuditEntry {
	entry := a.Entry(action, "environment", e.ID, map[string]any{"name": e.Name})
	if keep {
		id := e.ID
		entry.EnvironmentID = &id
	}
	return entry
}

// CreateEnvironment validates and inserts an environment and records
// environment.create.
func (c *Catalog) CreateEnvironment(ctx context.Context, a store.Actor, in store.EnvironmentInput) (e store.Environment, err error) {
	if err := ValidateEnvironment(in); err != nil {
		return e, err
	}
	err = c.write(ctx, func(tx *store.Store) error {
		if e, err = store.CreateEnvironment(ctx, tx, in); err != nil {
			return err
		}
		return tx.Audit(ctx, environmentEntry(a, "environment.create", e, true))
	})
	return e, err
}

// UpdateEnvironment validates and updates an environment and records
// environment.update.
func (c *Catalog) UpdateEnvironment(ctx context.Context, a store.Actor, id int64, in store.EnvironmentInput) (e store.Environment, err error) {
	if err := ValidateEnvironment(in); err != nil {
		return e, err
	}
	err = c.write(ctx, func(tx *store.Store) error {
		if e, err = store.UpdateEnvironment(ctx, tx, id, in); err != nil {
			return err
		}
		return tx.Audit(ctx, environmentEntry(a, "environment.update", e, true))
	})
	return e, err
}

// DeleteEnvironment removes an environment and records environment.delete.
func (c *Catalog) DeleteEnvironment(ctx context.Context, a store.Actor, id int64) error {
	return c.write(ctx, func(tx *store.Store) error {
		e, err := store.DeleteEnvironment(ctx, tx, id)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, environmentEntry(a, "environment.delete", e, false))
	})
}

// projectEntry is an audit entry on project p, visible to those who see it
// (keep is false once it is gone: then the entry is admin-only).
func projectEntry(a store.Actor, action string, p store.Project, keep bool) store.AuditEntry {
	entry := a.Entry(action, "project", p.ID, map[string]any{"name": p.Name})
	if keep {
		id := p.ID
		entry.ProjectID = &id
	}
	return entry
}

// CreateProject validates and inserts a project and records project.create.
func (c *Catalog) CreateProject(ctx context.Context, a store.Actor, in store.ProjectInput) (p store.Project, err error) {
	if err := ValidateProject(in); err != nil {
		return p, err
	}
	err = c.write(ctx, func(tx *store.Store) error {
		if p, err = store.CreateProject(ctx, tx, in); err != nil {
			return err
		}
		return tx.Audit(ctx, projectEntry(a, "project.create", p, true))
	})
	return p, err
}

// UpdateProject validates and updates a project, checks that its pipeline
// still fits the new budget, and records project.update.
func (c *Catalog) UpdateProject(ctx context.Context, a store.Actor, id int64, in store.ProjectInput) (p store.Project, err error) {
	if err := ValidateProject(in); err != nil {
		return p, err
	}
	err = c.write(ctx, func(tx *store.Store) error {
		if p, err = store.UpdateProject(ctx, tx, id, in); err != nil {
			return err
		}
		if err := c.CheckBudget(ctx, tx, p); err != nil {
			return err
		}
		return tx.Audit(ctx, projectEntry(a, "project.update", p, true))
	})
	return p, err
}

// DeleteProject removes a project and records project.delete.
func (c *Catalog) DeleteProject(ctx context.Context, a store.Actor, id int64) error {
	return c.write(ctx, func(tx *store.Store) error {
		p, err := store.DeleteProject(ctx, tx, id)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, projectEntry(a, "project.delete", p, false))
	})
}

// SavePipeline validates a graph, stores it as the project's next
// immutable version with its plugin images pinned, and records
// pipeline.save. It returns the version and the execution order; an
// invalid graph gives pipeline.Problems.
func (c *Catalog) SavePipeline(ctx context.Context, a store.Actor, projectID int64, raw []byte) (v store.PipelineVersion, order []string, err error) {
	err = c.write(ctx, func(tx *store.Store) error {
		if v, order, err = c.savePipeline(ctx, tx, projectID, raw, a.UserID); err != nil {
			return err
		}
		e := a.Entry("pipeline.save", "project", projectID, map[string]any{"version": v.Version, "plugin_pins": v.PluginPins})
		e.ProjectID = &projectID
		return tx.Audit(ctx, e)
	})
	return v, order, err
}
