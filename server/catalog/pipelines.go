package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/pipeline"
	"github.com/nullops/nullops/server/registry"
	"github.com/nullops/nullops/server/store"
)

// lookup loads what a project's pipeline may refer to: every service and
// plugin (with compiled parameter schemas) and the secrets visible to the
// project.
func (c *Catalog) lookup(ctx context.Context, q store.Querier, projectID int64) (pipeline.Catalog, map[string]store.Plugin, error) {
	lk := pipeline.Catalog{Services: map[string]pipeline.ServiceInfo{}, Plugins: map[string]pipeline.PluginInfo{}, Secrets: map[string]bool{}}
	services, err := store.ListServices(ctx, q)
	if err != nil {
		return lk, nil, err
	}
	for _, sv := range services {
		lk.Services[sv.Name] = pipeline.ServiceInfo{Ports: sv.Ports}
	}
	plugins, err := store.ListPlugins(ctx, q)
	if err != nil {
		return lk, nil, err
	}
	byName := map[string]store.Plugin{}
	for _, p := range plugins {
		byName[p.Name] = p
		sch, err := pipeline.CompileSchema(p.ParamsSchema)
		if err != nil {
			// Stored schemas were validated on write; a bad one only
			// disables checking that plugin's params.
			c.Log.Warn().Err(err).Str("plugin", p.Name).Msg("stored params schema does not compile")
			sch = nil
		}
		lk.Plugins[p.Name] = pipeline.PluginInfo{Schema: sch}
	}
	names, err := store.SecretNames(ctx, q, projectID)
	if err != nil {
		return lk, nil, err
	}
	for _, n := range names {
		lk.Secrets[n] = true
	}
	return lk, byName, nil
}

// DryRun validates a graph for a project without saving it and returns the
// execution order (or the errs.Fields of its problems).
func (c *Catalog) DryRun(ctx context.Context, projectID int64, raw []byte) ([]string, error) {
	project, err := store.GetProject(ctx, c.Store, projectID)
	if err != nil {
		return nil, err
	}
	lk, plugins, err := c.lookup(ctx, c.Store, projectID)
	if err != nil {
		return nil, err
	}
	g, order, err := pipeline.Check(raw, lk)
	if err := withShares(err, g, project, plugins); err != nil {
		return nil, err
	}
	return order, nil
}

// budget is what a deployment of g reserves: the graph's resources, else
// the project's.
func budget(project store.Project, g protocol.Graph) protocol.Resources {
	b := protocol.Resources{CPU: project.CPU, MemoryMB: project.MemoryMB}
	if r := g.Resources; r != nil {
		if r.CPU > 0 {
			b.CPU = r.CPU
		}
		if r.MemoryMB > 0 {
			b.MemoryMB = r.MemoryMB
		}
	}
	return b
}

// shares divides g's budget among its nodes (pipeline.Shares), plugins
// defaulting to their catalog limits.
func shares(g protocol.Graph, project store.Project, plugins map[string]store.Plugin) (map[string]protocol.Resources, error) {
	return pipeline.Shares(g, budget(project, g), func(name string) protocol.Resources {
		p := plugins[name]
		return protocol.Resources{CPU: p.CPU, MemoryMB: p.MemoryMB}
	})
}

// withShares adds the problems of g's shares to those of checking it (err),
// unless g could not be decoded.
func withShares(err error, g protocol.Graph, project store.Project, plugins map[string]store.Plugin) error {
	p := errs.FieldsOf(err)
	if err != nil && (p == nil || p["graph"] != "") {
		return err
	}
	_, serr := shares(g, project, plugins)
	sp := errs.FieldsOf(serr)
	if sp == nil {
		return err
	}
	if p == nil {
		p = errs.Fields{}
	}
	for k, v := range sp {
		if _, taken := p[k]; !taken {
			p[k] = v
		}
	}
	return p.ErrCode(pipeline.ErrCode)
}

// savePipeline validates a graph and stores it as the project's next
// immutable version, pinning the image reference of every plugin it uses.
// It returns the version and the execution order; invalid graphs give
// an error whose errs.Fields name the problems (code pipeline.ErrCode).
func (c *Catalog) savePipeline(ctx context.Context, tx *store.Store, projectID int64, raw []byte, actor *int64) (store.PipelineVersion, []string, error) {
	project, err := store.LockProject(ctx, tx, projectID)
	if err != nil {
		return store.PipelineVersion{}, nil, err
	}
	lk, plugins, err := c.lookup(ctx, tx, projectID)
	if err != nil {
		return store.PipelineVersion{}, nil, err
	}
	g, layout, order, err := pipeline.CheckDocument(raw, lk)
	if err := withShares(err, g, project, plugins); err != nil {
		return store.PipelineVersion{}, nil, err
	}
	pins := map[string]string{}
	for _, n := range g.Nodes {
		if n.Kind != protocol.KindComponent || pins[n.Plugin] != "" {
			continue
		}
		p := plugins[n.Plugin]
		r, err := store.GetRegistry(ctx, tx, p.RegistryID)
		if err != nil {
			return store.PipelineVersion{}, nil, err
		}
		ref, err := fmtImage(registry.Endpoint{URL: r.URL, Insecure: r.Insecure}, p.Image, p.Tag)
		if err != nil {
			return store.PipelineVersion{}, nil, fmt.Errorf("pin plugin %q: %w", p.Name, err)
		}
		pins[n.Plugin] = ref
	}
	canonical, err := pipeline.Encode(g, layout)
	if err != nil {
		return store.PipelineVersion{}, nil, fmt.Errorf("encode graph: %w", err)
	}
	v, err := store.InsertPipelineVersion(ctx, tx, projectID, canonical, pins, actor)
	if err != nil {
		return store.PipelineVersion{}, nil, err
	}
	return v, order, nil
}

// graphRefs lists the service names, plugin names and secret names a graph
// uses, sorted.
func graphRefs(g protocol.Graph) (services, plugins, secrets []string) {
	sv, pl, sc := map[string]bool{}, map[string]bool{}, map[string]bool{}
	addSecrets := func(s string) {
		refs, _ := pipeline.ParseRefs(s)
		for _, r := range refs {
			if r.Secret != "" {
				sc[r.Secret] = true
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case string:
			addSecrets(t)
		case map[string]any:
			for _, x := range t {
				walk(x)
			}
		case []any:
			for _, x := range t {
				walk(x)
			}
		}
	}
	for _, n := range g.Nodes {
		switch n.Kind {
		case protocol.KindService:
			sv[n.Service] = true
		case protocol.KindComponent:
			pl[n.Plugin] = true
		}
		for _, v := range n.Env {
			addSecrets(v)
		}
		walk(map[string]any(n.Params))
	}
	return sortedKeys(sv), sortedKeys(pl), sortedKeys(sc)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CheckBudget checks that the shares of the project's latest pipeline fit
// its budget (after the project's cpu or memory_mb changed). Problems are
// errs.Fields keyed "cpu" or "memory_mb".
func (c *Catalog) CheckBudget(ctx context.Context, q store.Querier, project store.Project) error {
	v, err := store.LatestPipeline(ctx, q, project.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	g, err := pipeline.Decode(v.Graph)
	if err != nil {
		return fmt.Errorf("stored pipeline version %d: %w", v.Version, err)
	}
	list, err := store.ListPlugins(ctx, q)
	if err != nil {
		return err
	}
	plugins := map[string]store.Plugin{}
	for _, p := range list {
		plugins[p.Name] = p
	}
	_, err = shares(g, project, plugins)
	p := errs.FieldsOf(err)
	if p == nil {
		return err
	}
	inv := errs.Fields{}
	for key, field := range map[string]string{"resources.cpu": "cpu", "resources.memory_mb": "memory_mb"} {
		if msg, ok := p[key]; ok {
			inv.Add(field, "does not fit pipeline version %d: %s", v.Version, msg)
		}
	}
	return inv.Err()
}

// ErrNoPipeline: the project exists but no pipeline was saved for it yet
// (errors.Is store.ErrNotFound too).
var ErrNoPipeline = &errs.Error{Kind: errs.NotFound, Code: "no_pipeline", Message: "this project has no pipeline yet; PUT one",
	Err: store.ErrNotFound}

// LatestPipeline is a project's newest pipeline version with its graph: an
// unknown project is store.ErrNotFound, a project without one ErrNoPipeline.
func (c *Catalog) LatestPipeline(ctx context.Context, projectID int64) (store.PipelineVersion, error) {
	if _, err := store.GetProject(ctx, c.Store.Pool, projectID); err != nil {
		return store.PipelineVersion{}, err
	}
	v, err := store.LatestPipeline(ctx, c.Store.Pool, projectID)
	if errors.Is(err, store.ErrNotFound) {
		return v, ErrNoPipeline
	}
	return v, err
}
