package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/pipeline"
	"github.com/nullops/nullops/server/registry"
	"github.com/nullops/nullops/server/store"
)

// endpoints opens each registry's credentials once per call.
type endpoints struct {
	c     *Catalog
	q     store.Querier
	cache map[int64]registry.Endpoint
}

func (e *endpoints) get(ctx context.Context, id int64) (registry.Endpoint, error) {
	if ep, ok := e.cache[id]; ok {
		return ep, nil
	}
	ep, _, err := e.c.Endpoint(ctx, e.q, id)
	if err != nil {
		return registry.Endpoint{}, err
	}
	e.cache[id] = ep
	return ep, nil
}

// loadVersion returns a project's pipeline version (by row id) and its graph.
func loadVersion(ctx context.Context, q store.Querier, projectID, pipelineVersionID int64) (store.PipelineVersion, protocol.Graph, error) {
	pv, err := store.GetPipelineVersionByID(ctx, q, pipelineVersionID)
	if err != nil {
		return pv, protocol.Graph{}, err
	}
	if pv.ProjectID != projectID {
		return pv, protocol.Graph{}, fmt.Errorf("pipeline version id %d of project %d: %w", pipelineVersionID, projectID, store.ErrNotFound)
	}
	g, err := pipeline.Decode(pv.Graph)
	if err != nil {
		return pv, g, fmt.Errorf("stored pipeline version %d: %w", pv.Version, err)
	}
	return pv, g, nil
}

// CheckTags completes and checks the tags of a deployment of a pipeline
// version: pinned services get their tag (a different requested tag is an
// error); selectable ones need a requested tag that matches the service's
// pattern and exists in its registry (listing cached briefly). tags and the
// result map service name → tag. Problems are errs.Fields keyed
// "tags.<service>"; registry failures are *registry.Error.
func (c *Catalog) CheckTags(ctx context.Context, projectID, pipelineVersionID int64, tags map[string]string) (map[string]string, error) {
	_, g, err := loadVersion(ctx, c.Store, projectID, pipelineVersionID)
	if err != nil {
		return nil, gone(err)
	}
	names, _, _ := graphRefs(g)
	services, err := store.ServicesByName(ctx, c.Store, names)
	if err != nil {
		return nil, err
	}
	v := errs.Fields{}
	for name := range tags {
		if !slices.Contains(names, name) {
			v.Add("tags."+name, "the pipeline has no service %q", name)
		}
	}
	out := map[string]string{}
	for _, name := range names {
		sv, ok := services[name]
		if !ok {
			v.Add("tags."+name, "service %q no longer exists in the catalog", name)
			continue
		}
		want := tags[name]
		if sv.TagMode == store.TagModePinned {
			if want != "" && want != sv.Tag {
				v.Add("tags."+name, "service %q is pinned to %q", name, sv.Tag)
				continue
			}
			out[name] = sv.Tag
			continue
		}
		switch {
		case want == "":
			v.Add("tags."+name, "choose a tag of %s matching %q", sv.Image, sv.TagPattern)
			continue
		case registry.ValidateTag(want) != nil:
			v.Add("tags."+name, "%v", registry.ValidateTag(want))
			continue
		case !registry.MatchTag(sv.TagPattern, want):
			v.Add("tags."+name, "tag %q does not match the service's pattern %q", want, sv.TagPattern)
			continue
		}
		l, err := c.RegistryTags(ctx, sv.RegistryID, sv.Image, sv.TagPattern)
		if err != nil {
			return nil, gone(fmt.Errorf("service %q: registry: %w", name, err))
		}
		if !slices.Contains(l.Tags, want) {
			v.Add("tags."+name, "tag %q of %s does not exist in registry %q", want, sv.Image, sv.RegistryName)
			continue
		}
		out[name] = want
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Definition is what a deployment was created with: the resolved spec
// without secret values and without registry credentials, and the registry
// each image is pulled from. It is stored with the deployment, so later
// syncs and redeliveries run what was created even after the catalog or the
// project changed; Complete adds the current credentials and secret values.
type Definition struct {
	Spec       protocol.DeploySpec `json:"spec"`
	Registries map[string]int64    `json:"registries"` // node id → registry id
}

// Resolve turns a project's pipeline version and the chosen tags (service
// name → tag, as completed by CheckTags) into the skeleton of the spec an
// agent runs: Define, then Complete.
func (c *Catalog) Resolve(ctx context.Context, projectID, pipelineVersionID int64, tags map[string]string) (protocol.DeploySpec, error) {
	def, err := c.Define(ctx, projectID, pipelineVersionID, tags)
	if err != nil {
		return protocol.DeploySpec{}, err
	}
	return c.Complete(ctx, projectID, def)
}

// Define resolves a pipeline version and tags into a Definition: graph,
// services with full image references, ports, env, health and their shares,
// plugins with their pinned images, limits, timeout and network, and the
// budget. The caller fills in DeploymentID, Name and Environment.
func (c *Catalog) Define(ctx context.Context, projectID, pipelineVersionID int64, tags map[string]string) (Definition, error) {
	q := c.Store
	pv, g, err := loadVersion(ctx, q, projectID, pipelineVersionID)
	if err != nil {
		return Definition{}, gone(err)
	}
	project, err := store.GetProject(ctx, q, projectID)
	if err != nil {
		return Definition{}, gone(err)
	}
	svcNames, plNames, _ := graphRefs(g)
	services, err := store.ServicesByName(ctx, q, svcNames)
	if err != nil {
		return Definition{}, err
	}
	allPlugins, err := store.ListPlugins(ctx, q)
	if err != nil {
		return Definition{}, err
	}
	plugins := map[string]store.Plugin{}
	for _, p := range allPlugins {
		if slices.Contains(plNames, p.Name) {
			plugins[p.Name] = p
		}
	}
	eps := &endpoints{c: c, q: q, cache: map[int64]registry.Endpoint{}}
	spec := protocol.DeploySpec{
		Project:         project.Name,
		PipelineVersion: pv.Version,
		Graph:           g,
		Services:        map[string]protocol.ServiceImage{},
		Plugins:         map[string]protocol.PluginImage{},
		Resources:       budget(project, g),
	}
	def := Definition{Registries: map[string]int64{}}
	share, err := shares(g, project, plugins)
	if err != nil {
		return Definition{}, sharesInvalid(err)
	}
	for _, n := range g.Nodes {
		switch n.Kind {
		case protocol.KindService:
			sv, ok := services[n.Service]
			if !ok {
				return Definition{}, gone(fmt.Errorf("node %q: service %q no longer exists: %w", n.ID, n.Service, store.ErrNotFound))
			}
			tag := sv.Tag
			if sv.TagMode == store.TagModeSelectable {
				tag = tags[sv.Name]
				if tag == "" || !registry.MatchTag(sv.TagPattern, tag) {
					return Definition{}, errs.Fields{"tags." + sv.Name: fmt.Sprintf("choose a tag matching %q", sv.TagPattern)}.Err()
				}
			}
			ep, err := eps.get(ctx, sv.RegistryID)
			if err != nil {
				return Definition{}, gone(fmt.Errorf("node %q: registry %d: %w", n.ID, sv.RegistryID, err))
			}
			ref, err := fmtImage(ep, sv.Image, tag)
			if err != nil {
				return Definition{}, unresolvable(err)
			}
			spec.Services[n.ID] = protocol.ServiceImage{Image: ref, Ports: sv.Ports, Env: sv.Env, Health: sv.Health,
				Resources: share[n.ID]}
			def.Registries[n.ID] = sv.RegistryID
		case protocol.KindComponent:
			p, ok := plugins[n.Plugin]
			if !ok {
				return Definition{}, gone(fmt.Errorf("node %q: plugin %q no longer exists: %w", n.ID, n.Plugin, store.ErrNotFound))
			}
			image := pv.PluginPins[n.Plugin]
			ep, err := eps.get(ctx, p.RegistryID)
			if err != nil {
				return Definition{}, gone(fmt.Errorf("node %q: registry %d: %w", n.ID, p.RegistryID, err))
			}
			if image == "" { // versions saved before pinning: use the current image
				if image, err = fmtImage(ep, p.Image, p.Tag); err != nil {
					return Definition{}, unresolvable(err)
				}
			}
			pi := pluginImage(p, image, ep)
			pi.Auth = nil
			pi.Resources = share[n.ID]
			spec.Plugins[n.ID] = pi
			def.Registries[n.ID] = p.RegistryID
		}
	}
	def.Spec = spec
	return def, nil
}

// Complete turns a Definition into the spec an agent runs: the current pull
// credentials of its registries and the values of the secrets its graph
// references, decrypted in memory. A registry or secret that no longer
// exists is a 409 unresolvable (errors.Is store.ErrNotFound).
func (c *Catalog) Complete(ctx context.Context, projectID int64, def Definition) (protocol.DeploySpec, error) {
	q := c.Store
	spec := def.Spec
	spec.Services = maps.Clone(spec.Services)
	spec.Plugins = maps.Clone(spec.Plugins)
	eps := &endpoints{c: c, q: q, cache: map[int64]registry.Endpoint{}}
	for id, regID := range def.Registries {
		ep, err := eps.get(ctx, regID)
		if err != nil {
			return protocol.DeploySpec{}, gone(fmt.Errorf("node %q: registry %d: %w", id, regID, err))
		}
		if sv, ok := spec.Services[id]; ok {
			sv.Auth = pullAuth(ep)
			spec.Services[id] = sv
		}
		if pi, ok := spec.Plugins[id]; ok {
			pi.Auth = pullAuth(ep)
			spec.Plugins[id] = pi
		}
	}
	_, _, secretNames := graphRefs(spec.Graph)
	secrets, err := c.OpenSecrets(ctx, q, projectID, secretNames)
	if err != nil {
		return protocol.DeploySpec{}, gone(fmt.Errorf("pipeline version %d: %w", spec.PipelineVersion, err))
	}
	spec.Secrets = nil
	if len(secrets) > 0 {
		spec.Secrets = secrets
	}
	return spec, nil
}

// unresolvable is a deployment that cannot be defined from the catalog as
// it is now (an image reference its registry cannot form, an object that
// vanished): a conflict an admin resolves by fixing the catalog or the
// pipeline, showing err's message.
func unresolvable(err error) error {
	return &errs.Error{Kind: errs.Conflict, Code: "unresolvable", Message: err.Error(), Err: err}
}

// gone presents a catalog object that no longer exists (store.ErrNotFound
// in err's chain) as unresolvable; other errors, kinded or not, pass as
// they are (an unkinded one is the server's failure, not the caller's).
func gone(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return unresolvable(err)
	}
	return err
}

// sharesInvalid presents shares that no longer fit the project's budget
// (it was lowered after the pipeline was saved) as invalid fields.
func sharesInvalid(err error) error {
	p := errs.FieldsOf(err)
	if p == nil {
		return err
	}
	v := errs.Fields{}
	for k, msg := range p {
		v.Add("pipeline."+k, "%s", msg)
	}
	return v.Err()
}

func pluginImage(p store.Plugin, image string, ep registry.Endpoint) protocol.PluginImage {
	return protocol.PluginImage{
		Name:         p.Name,
		Image:        image,
		Auth:         pullAuth(ep),
		Resources:    protocol.Resources{CPU: p.CPU, MemoryMB: p.MemoryMB},
		Timeout:      (time.Duration(p.TimeoutSeconds) * time.Second).String(),
		JoinNetwork:  p.JoinNetwork,
		DockerSocket: p.DockerSocket,
	}
}

// PluginsUpdate is the plugins.update message for agents: every plugin's
// current image and pull credentials, so agents can pre-pull.
func (c *Catalog) PluginsUpdate(ctx context.Context) (protocol.PluginsUpdate, error) {
	list, err := store.ListPlugins(ctx, c.Store)
	if err != nil {
		return protocol.PluginsUpdate{}, err
	}
	eps := &endpoints{c: c, q: c.Store, cache: map[int64]registry.Endpoint{}}
	u := protocol.PluginsUpdate{Plugins: []protocol.PluginImage{}}
	for _, p := range list {
		ep, err := eps.get(ctx, p.RegistryID)
		if err != nil {
			return u, err
		}
		image, err := fmtImage(ep, p.Image, p.Tag)
		if err != nil {
			return u, err
		}
		u.Plugins = append(u.Plugins, pluginImage(p, image, ep))
	}
	return u, nil
}
