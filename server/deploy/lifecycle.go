package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/catalog"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/ingresspub"
	"github.com/nullops/nullops/server/placement"
	"github.com/nullops/nullops/server/store"
)

// dnsLabel is what a deployment name must be: it becomes a host-name label.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks a deployment name.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("is required")
	}
	if !dnsLabel.MatchString(name) {
		return fmt.Errorf("%q is not a DNS label: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// CreateRequest asks for a new deployment.
type CreateRequest struct {
	ProjectID     int64
	EnvironmentID int64
	Name          string
	// Tags chooses a tag per selectable service (by catalog service name);
	// pinned services take their catalog tag.
	Tags map[string]string
}

// plan is a resolved deployment before it has an id.
type plan struct {
	target store.DeploymentTarget
	tags   map[string]string
	spec   protocol.DeploySpec
	def    catalog.Definition // spec without secret values, recorded
	req    placement.Request
	sel    placement.Selector
}

// prepare validates everything that does not need the database locks:
// project, environment, pipeline, tags (in the registry), host names,
// node selector, and resolves the spec of the latest pipeline version.
func (s *Service) prepare(ctx context.Context, projectID, environmentID int64, name string, tags map[string]string) (*plan, error) {
	t, err := s.Store.GetDeploymentTarget(ctx, projectID, environmentID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(errs.Invalid, "invalid", "project %d or environment %d does not exist", projectID, environmentID)
	}
	if err != nil {
		return nil, err
	}
	if t.PipelineVersionID == 0 {
		return nil, errorf(errs.Conflict, "no_pipeline", "project %s has no pipeline yet; an admin must save one first", t.ProjectName)
	}
	sel, err := placement.ParseSelector(t.NodeSelector)
	if err != nil {
		return nil, errorf(errs.Conflict, "bad_node_selector", "project %s has an invalid node selector: %v", t.ProjectName, err)
	}
	full := maps.Clone(tags)
	if s.Tags != nil {
		full, err = s.Tags.CheckTags(ctx, projectID, t.PipelineVersionID, tags)
		if err != nil {
			return nil, err
		}
	}
	def, err := s.Resolver.Define(ctx, projectID, t.PipelineVersionID, full)
	if err != nil {
		return nil, err
	}
	spec, err := s.Resolver.Complete(ctx, projectID, def)
	if err != nil {
		return nil, err
	}
	var exposed []string
	for _, n := range spec.Graph.Nodes {
		if n.Kind == protocol.KindService && n.Ingress {
			exposed = append(exposed, n.ID)
		}
	}
	hosts := ingresspub.HostNames{Environment: t.EnvironmentName, BaseDomain: t.BaseDomain, Template: t.HostTemplate}
	if err := ingresspub.CheckDeploymentHosts(hosts, name, exposed); err != nil {
		return nil, errorf(errs.Invalid, "invalid", "name: %v", err)
	}
	p := &plan{target: t, tags: full, spec: spec, def: def, sel: sel}
	if p.spec.Resources.CPU <= 0 || p.spec.Resources.MemoryMB <= 0 {
		p.spec.Resources = protocol.Resources{CPU: t.ProjectCPU, MemoryMB: t.ProjectMemoryMB}
	}
	p.req = placement.Request{CPU: p.spec.Resources.CPU, MemoryMB: p.spec.Resources.MemoryMB}
	p.spec.Name, p.spec.Project, p.spec.Environment, p.spec.PipelineVersion = name, t.ProjectName, t.EnvironmentName, t.PipelineVersion
	p.def.Spec.Resources = p.spec.Resources
	return p, nil
}

// place locks the environment's candidate nodes and chooses one.
func (s *Service) place(ctx context.Context, tx *store.Store, p *plan) (placement.Candidate, error) {
	nodes, err := store.LockPlacementNodes(ctx, tx, p.target.EnvironmentID)
	if err != nil {
		return placement.Candidate{}, err
	}
	c, err := choose(nodes, p)
	var nf *placement.NoFitError
	if errors.As(err, &nf) {
		return c, errs.New(errs.Conflict, "no_capacity", "%s", nf.Message)
	}
	return c, err
}

// choose runs placement on the environment's nodes for plan p.
func choose(nodes []store.PlacementNode, p *plan) (placement.Candidate, error) {
	cands := make([]placement.Candidate, len(nodes))
	for i, n := range nodes {
		cands[i] = placement.Candidate{ID: n.ID, Name: n.Name, Labels: n.Labels, CapCPU: n.CapCPU, CapMemMB: n.CapMemMB,
			AllocCPU: n.AllocCPU, AllocMemMB: n.AllocMemMB, OtherCPU: n.OtherCPU, UsedMemMB: n.UsedMemMB,
			Overcommit: p.target.CPUOvercommit}
	}
	return placement.Choose(p.target.EnvironmentName, cands, p.sel, p.req)
}

// PlacementVerdict answers a placement dry run.
type PlacementVerdict struct {
	Fits bool `json:"fits"`
	// Reason says why not, without node names or figures (placement's
	// NoFitError.Public).
	Reason   string  `json:"reason,omitempty"`
	CPU      float64 `json:"cpu"`       // what the deployment would reserve
	MemoryMB int64   `json:"memory_mb"` // likewise
}

// DryRun says whether a deployment as req describes would be placed now,
// with the same preparation (project, pipeline, tags, host names) and the
// same placement code as Create, without locking, reserving or recording
// anything. An empty name is allowed (a placeholder is used for the host
// name check). Errors are the ones Create would return before placement.
func (s *Service) DryRun(ctx context.Context, req CreateRequest) (PlacementVerdict, error) {
	name := req.Name
	if name == "" {
		name = "dry-run"
	}
	if err := ValidateName(name); err != nil {
		return PlacementVerdict{}, errs.Field("name", "%v", err)
	}
	p, err := s.prepare(ctx, req.ProjectID, req.EnvironmentID, name, req.Tags)
	if err != nil {
		return PlacementVerdict{}, err
	}
	nodes, err := store.PlacementNodes(ctx, s.Store, p.target.EnvironmentID)
	if err != nil {
		return PlacementVerdict{}, err
	}
	v := PlacementVerdict{Fits: true, CPU: p.req.CPU, MemoryMB: p.req.MemoryMB}
	_, err = choose(nodes, p)
	var nf *placement.NoFitError
	if errors.As(err, &nf) {
		v.Fits, v.Reason = false, nf.Public
		return v, nil
	}
	return v, err
}

// rows derives the deployment_services and pending deployment_steps of a spec.
func (s *Service) rows(ctx context.Context, spec protocol.DeploySpec) ([]store.DeploymentService, []store.DeploymentStep, error) {
	var names []string
	for _, n := range spec.Graph.Nodes {
		if n.Kind == protocol.KindService {
			names = append(names, n.Service)
		}
	}
	ids, err := s.Store.ServiceIDsByName(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	var svcs []store.DeploymentService
	var steps []store.DeploymentStep
	for _, n := range spec.Graph.Nodes {
		steps = append(steps, store.DeploymentStep{NodeKey: n.ID, Kind: n.Kind})
		if n.Kind != protocol.KindService {
			continue
		}
		img := spec.Services[n.ID]
		image, tag := splitRef(img.Image)
		port := n.Port
		if port == 0 && len(img.Ports) > 0 {
			port = img.Ports[0]
		}
		ds := store.DeploymentService{NodeKey: n.ID, Image: image, Tag: tag, ContainerPort: port, Ingress: n.Ingress}
		if id, ok := ids[n.Service]; ok {
			ds.ServiceID = &id
		}
		svcs = append(svcs, ds)
	}
	return svcs, steps, nil
}

// splitRef splits "host:5000/repo/img:tag" into image and tag.
func splitRef(ref string) (string, string) {
	if at := strings.Index(ref, "@"); at >= 0 {
		return ref[:at], ref[at+1:]
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, "latest"
}

// Create places and starts a new deployment and returns it with status
// deploying. On any error nothing is created.
func (s *Service) Create(ctx context.Context, a Actor, req CreateRequest) (store.Deployment, error) {
	return s.create(ctx, a, req, nil)
}

func (s *Service) create(ctx context.Context, a Actor, req CreateRequest, from *store.Deployment) (store.Deployment, error) {
	if err := ValidateName(req.Name); err != nil {
		return store.Deployment{}, errs.Field("name", "%v", err)
	}
	p, err := s.prepare(ctx, req.ProjectID, req.EnvironmentID, req.Name, req.Tags)
	if err != nil {
		return store.Deployment{}, err
	}
	svcs, steps, err := s.rows(ctx, p.spec)
	if err != nil {
		return store.Deployment{}, err
	}
	var d store.Deployment
	err = s.tx(ctx, func(tx *store.Store) error {
		node, err := s.place(ctx, tx, p)
		if err != nil {
			return err
		}
		n := store.NewDeployment{
			Name: req.Name, ProjectID: req.ProjectID, EnvironmentID: req.EnvironmentID, NodeID: node.ID,
			PipelineVersionID: p.target.PipelineVersionID, Status: store.DeploymentDeploying, OwnerID: a.UserID,
			Tags: p.tags, CPU: p.req.CPU, MemoryMB: p.req.MemoryMB, TTL: p.target.TTL(),
		}
		action, verb, detail := "created", "deployment.create", map[string]any{"tags": p.tags, "pipeline_version": p.target.PipelineVersion, "node": node.Name}
		if from != nil {
			n.ClonedFrom = &from.ID
			action, verb = "cloned", "deployment.clone"
			detail["from"] = map[string]any{"id": from.ID, "name": from.Name, "tags": from.Tags, "pipeline_version": from.PipelineVersion}
		}
		id, err := store.InsertDeployment(ctx, tx, n)
		if errors.Is(err, store.ErrDeploymentNameTaken) {
			return errorf(errs.Conflict, "name_taken", "a deployment named %s already exists in environment %s", req.Name, p.target.EnvironmentName)
		}
		if err != nil {
			return err
		}
		if err := store.ReplaceDeploymentPlan(ctx, tx, id, svcs, steps); err != nil {
			return err
		}
		if err := s.recordDefinition(ctx, tx, id, p.def); err != nil {
			return err
		}
		if err := store.AddDeploymentHistory(ctx, tx, id, a.UserID, a.Name, action, detail); err != nil {
			return err
		}
		if d, err = store.LockDeployment(ctx, tx, id); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, verb, d, detail); err != nil {
			return err
		}
		ev := eventFor(d, EventStatus)
		ev.Status = d.Status
		return publish(ctx, tx, ev)
	})
	if err != nil {
		return store.Deployment{}, err
	}
	s.wake() // delivered by the replica that holds the node (delivery_deploy.go)
	return d, nil
}

// recordDefinition stores what the deployment runs (no secret values: the
// definition holds references only), so its syncs and redeliveries do not
// depend on the catalog staying as it was.
func (s *Service) recordDefinition(ctx context.Context, tx *store.Store, id int64, def catalog.Definition) error {
	b, err := encodeDefinition(id, def)
	if err != nil {
		return err
	}
	return store.SetDeploymentDefinition(ctx, tx, id, b)
}

// encodeDefinition is the stored form of a deployment's definition, never
// with secret values.
func encodeDefinition(id int64, def catalog.Definition) ([]byte, error) {
	def.Spec.DeploymentID = id
	def.Spec.Secrets = nil
	b, err := json.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("encode definition: %w", err)
	}
	return b, nil
}

// backfillDefinition records the definition of a deployment created before
// definitions were recorded.
func (s *Service) backfillDefinition(ctx context.Context, id int64, def catalog.Definition) error {
	b, err := encodeDefinition(id, def)
	if err != nil {
		return err
	}
	return store.BackfillDeploymentDefinition(ctx, s.Store, id, b)
}

// fail marks a deploying deployment failed with reason.
func (s *Service) fail(ctx context.Context, id int64, reason string) error {
	return s.failFrom(ctx, id, reason, store.DeploymentPending, store.DeploymentDeploying, store.DeploymentOffline)
}

// failFrom marks a deployment failed with reason if its status is one of
// from, with its history entry and event, in one transaction.
func (s *Service) failFrom(ctx context.Context, id int64, reason string, from ...string) error {
	return s.tx(ctx, func(tx *store.Store) error {
		d, err := store.LockDeployment(ctx, tx, id)
		if err != nil {
			return err
		}
		ok, err := store.SetDeploymentStatus(ctx, tx, id, from, store.DeploymentFailed, reason, "")
		if err != nil || !ok {
			return err
		}
		if err := store.AddDeploymentHistory(ctx, tx, id, nil, System.Name, "failed", map[string]any{"reason": reason}); err != nil {
			return err
		}
		ev := eventFor(d, EventStatus)
		ev.Status, ev.Reason = store.DeploymentFailed, reason
		return publish(ctx, tx, ev)
	})
}

// Clone creates a new deployment of the same project and environment with
// the source's tags overridden by tags, on the latest pipeline version.
func (s *Service) Clone(ctx context.Context, a Actor, id int64, name string, tags map[string]string) (store.Deployment, error) {
	src, err := s.get(ctx, id)
	if err != nil {
		return store.Deployment{}, err
	}
	merged := maps.Clone(src.Tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	return s.create(ctx, a, CreateRequest{ProjectID: src.ProjectID, EnvironmentID: src.EnvironmentID, Name: name, Tags: merged}, &src)
}

func (s *Service) get(ctx context.Context, id int64) (store.Deployment, error) {
	d, err := s.Store.GetDeployment(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return d, ErrNotFound
	}
	return d, err
}

// Retry redeploys a failed deployment with the same tags on the latest
// pipeline version (placed again: its resources were released when it was
// rolled back).
func (s *Service) Retry(ctx context.Context, a Actor, id int64) (store.Deployment, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return d, err
	}
	if d.Status != store.DeploymentFailed {
		return d, errorf(errs.Conflict, "wrong_status", "only a failed deployment can be retried; %s is %s", d.Name, d.Status)
	}
	p, err := s.prepare(ctx, d.ProjectID, d.EnvironmentID, d.Name, d.Tags)
	if err != nil {
		return d, err
	}
	svcs, steps, err := s.rows(ctx, p.spec)
	if err != nil {
		return d, err
	}
	err = s.tx(ctx, func(tx *store.Store) error {
		node, err := s.place(ctx, tx, p)
		if err != nil {
			return err
		}
		cur, err := store.LockDeployment(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.Status != store.DeploymentFailed {
			return errorf(errs.Conflict, "wrong_status", "only a failed deployment can be retried; %s is %s", cur.Name, cur.Status)
		}
		if err := store.RetargetDeployment(ctx, tx, id, node.ID, p.target.PipelineVersionID, p.req.CPU, p.req.MemoryMB); err != nil {
			return err
		}
		if err := store.ReplaceDeploymentPlan(ctx, tx, id, svcs, steps); err != nil {
			return err
		}
		if err := s.recordDefinition(ctx, tx, id, p.def); err != nil {
			return err
		}
		detail := map[string]any{"tags": p.tags, "pipeline_version": p.target.PipelineVersion, "node": node.Name,
			"previous": map[string]any{"pipeline_version": cur.PipelineVersion, "reason": cur.StatusReason, "failed_step": cur.FailedStep}}
		if err := store.AddDeploymentHistory(ctx, tx, id, a.UserID, a.Name, "retried", detail); err != nil {
			return err
		}
		if d, err = store.LockDeployment(ctx, tx, id); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "deployment.retry", d, detail); err != nil {
			return err
		}
		ev := eventFor(d, EventStatus)
		ev.Status = d.Status
		return publish(ctx, tx, ev)
	})
	if err != nil {
		return store.Deployment{}, err
	}
	s.wake() // delivered by the replica that holds the node (delivery_deploy.go)
	return d, nil
}

// Extend resets the TTL clock: expires_at = now + TTL (project override or
// environment default).
func (s *Service) Extend(ctx context.Context, a Actor, id int64) (store.Deployment, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return d, err
	}
	t, err := s.Store.GetDeploymentTarget(ctx, d.ProjectID, d.EnvironmentID)
	if err != nil {
		return d, err
	}
	err = s.tx(ctx, func(tx *store.Store) error {
		cur, err := store.LockDeployment(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.Status == store.DeploymentDeleting || cur.Status == store.DeploymentDeleted {
			return errorf(errs.Conflict, "wrong_status", "deployment %s is %s and cannot be extended", cur.Name, cur.Status)
		}
		exp, err := store.ExtendDeployment(ctx, tx, id, t.TTL())
		if err != nil {
			return err
		}
		detail := map[string]any{"expires_at": exp, "previous_expires_at": cur.ExpiresAt, "ttl_seconds": int64(t.TTL() / time.Second)}
		if err := store.AddDeploymentHistory(ctx, tx, id, a.UserID, a.Name, "extended", detail); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "deployment.extend", cur, detail); err != nil {
			return err
		}
		ev := eventFor(cur, EventTTL)
		ev.Status, ev.ExpiresAt = cur.Status, &exp
		return publish(ctx, tx, ev)
	})
	if err != nil {
		return d, err
	}
	return s.get(ctx, id)
}

// Cancel stops a deploying deployment; it is the same as Delete (the agent
// rolls back what it created), but refuses deployments that finished.
func (s *Service) Cancel(ctx context.Context, a Actor, id int64) (store.Deployment, error) {
	d, err := s.get(ctx, id)
	if err != nil {
		return d, err
	}
	if d.Status != store.DeploymentDeploying && d.Status != store.DeploymentPending {
		return d, errorf(errs.Conflict, "wrong_status", "only a deploying deployment can be cancelled; %s is %s (delete it instead)", d.Name, d.Status)
	}
	return s.remove(ctx, a, id, "cancel", nil)
}

// Delete removes a deployment (cancelling it while it deploys). It returns
// once the delete is recorded; the deployment's routes are withdrawn and the
// agent is asked to remove it in the background, retried until it is done.
// When its node is offline the delete is remembered (delete_pending) and
// carried out when the node reconnects.
func (s *Service) Delete(ctx context.Context, a Actor, id int64) (store.Deployment, error) {
	return s.remove(ctx, a, id, "delete", nil)
}

// remove is Delete/Cancel/expiry; extra goes into the history and audit.
func (s *Service) remove(ctx context.Context, a Actor, id int64, verb string, extra map[string]any) (store.Deployment, error) {
	var d store.Deployment
	var send *deleteCall
	err := s.tx(ctx, func(tx *store.Store) error {
		cur, err := store.LockDeployment(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if cur.Status == store.DeploymentDeleted {
			return errorf(errs.Conflict, "wrong_status", "deployment %s is already deleted", cur.Name)
		}
		detail := map[string]any{"status": cur.Status, "tags": cur.Tags, "pipeline_version": cur.PipelineVersion}
		maps.Copy(detail, extra)
		if cur.NodeID == nil {
			// Never placed: nothing runs anywhere.
			if _, err := store.SetDeploymentStatus(ctx, tx, id, []string{cur.Status}, store.DeploymentDeleted, "", ""); err != nil {
				return err
			}
		} else {
			nodeID := *cur.NodeID
			online := cur.NodeStatus == store.NodeOnline && s.connected(nodeID)
			reason := ""
			if !online {
				reason = fmt.Sprintf("node %s is offline; the deployment is removed when the node reconnects", cur.NodeName)
				detail["pending"] = true
			} else {
				send = &protocol.CallDelete
				if verb == "cancel" || cur.Status == store.DeploymentDeploying || cur.Status == store.DeploymentPending {
					send = &protocol.CallCancel
				}
			}
			if err := store.MarkDeploymentDeleting(ctx, tx, id, !online, reason); err != nil {
				return err
			}
		}
		action := map[string]string{"delete": "deleted", "cancel": "cancelled", "expire": "expired"}[verb]
		if err := store.AddDeploymentHistory(ctx, tx, id, a.UserID, a.Name, action, detail); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, "deployment."+verb, cur, detail); err != nil {
			return err
		}
		if d, err = store.LockDeployment(ctx, tx, id); err != nil {
			return err
		}
		if send != nil {
			// Recorded before the commit: the commit's own notification
			// wakes the delivery loop (Follow), which must already know
			// whether to send a cancel or a delete.
			s.dl.mu.Lock()
			s.dl.typ[id] = *send
			s.dl.mu.Unlock()
		}
		ev := eventFor(d, EventStatus)
		ev.Status, ev.Reason, ev.DeletePending = d.Status, d.StatusReason, d.DeletePending
		return publish(ctx, tx, ev)
	})
	if err != nil {
		if send != nil {
			s.dl.mu.Lock()
			delete(s.dl.typ, id)
			s.dl.mu.Unlock()
		}
		return d, err
	}
	s.wake()
	return d, nil
}
