// Package executor runs deployments on this node: it walks a deployment's
// pipeline graph in dependency order (services as long-running workloads,
// components as one-shot plugin workloads), reports every step through
// the journaled event channel, rolls back on failure, cancel and delete,
// reconciles the runtime with the desired state on sync, and streams logs.
//
// It runs workloads only through agent/runtime.Runtime (Docker or
// Kubernetes, chosen by the agent's configuration) and knows neither.
//
// The executor implements agent/channel.Handler (Sync, Deploy, Delete,
// Cancel, Logs, UpdatePlugins); the channel calls those methods one at a
// time and they return quickly, long work continuing in the background.
// Events leave through an Emitter (the agent's journal).
package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/agent/state"
	"github.com/nullops/nullops/protocol"
)

// Emitter persists and sends one journaled event (the agent's outbox).
type Emitter interface {
	Emit(ev protocol.Event) (uint64, error)
}

// Config tunes the executor.
type Config struct {
	// PluginTimeout applies when a plugin does not set one (default 5m).
	PluginTimeout time.Duration
	// HealthTimeout applies when a health check does not set one (default 60s).
	HealthTimeout time.Duration
	// LogCapBytes caps the step log of one attempt (default 256 KiB).
	LogCapBytes int
	// DockerSocket is the host path of the Docker socket, bind-mounted into
	// plugins whose spec asks for it (default /var/run/docker.sock), on a
	// runtime that can (runtime.Capabilities).
	DockerSocket string
	// AllowDockerSocket lets plugins that the catalog marks docker_socket
	// have the socket; without it their steps fail (off by default).
	AllowDockerSocket bool
}

func (c *Config) defaults() {
	if c.PluginTimeout <= 0 {
		c.PluginTimeout = 5 * time.Minute
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = 60 * time.Second
	}
	if c.LogCapBytes <= 0 {
		c.LogCapBytes = 256 << 10
	}
	if c.DockerSocket == "" {
		c.DockerSocket = "/var/run/docker.sock"
	}
}

// Executor owns this node's deployments.
type Executor struct {
	cfg Config
	rt  runtime.Runtime
	st  *state.Store
	em  Emitter
	log zerolog.Logger

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	runs  map[int64]*run        // pipelines in progress
	locks map[int64]*sync.Mutex // serialise lifecycle work per deployment

	statsMu   sync.Mutex
	lastStats []protocol.ContainerStats

	mon *monitor
}

// errDeleted is the cancel cause of a pipeline stopped by delete/cancel.
var errDeleted = errors.New("deployment deleted")

// run is a pipeline in progress.
type run struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// New builds an executor. Call Recover once before serving requests.
func New(cfg Config, rt runtime.Runtime, st *state.Store, em Emitter, log zerolog.Logger) *Executor {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	e := &Executor{
		cfg: cfg, rt: rt, st: st, em: em, log: log.With().Str("component", "executor").Logger(),
		ctx: ctx, cancel: cancel,
		runs: map[int64]*run{}, locks: map[int64]*sync.Mutex{}, mon: newMonitor(),
	}
	if rt != nil {
		e.go_(e.watchServices)
	}
	return e
}

// Close stops every pipeline and log stream and waits for them. Pipelines
// stopped this way are left as they are (the process is going away); the
// next start's Recover rolls them back.
func (e *Executor) Close() {
	e.mu.Lock()
	closed := e.ctx.Err() != nil
	e.mu.Unlock()
	if closed {
		return
	}
	e.cancel()
	e.wg.Wait()
}

func (e *Executor) lockFor(id int64) *sync.Mutex {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.locks[id]
	if !ok {
		l = &sync.Mutex{}
		e.locks[id] = l
	}
	return l
}

func (e *Executor) go_(fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

// emit journals one event; a failure is logged (the outbox is the only way
// out, there is nothing better to do).
func (e *Executor) emit(ev protocol.Event) {
	if _, err := e.em.Emit(ev); err != nil {
		e.log.Error().Err(err).Str("event", ev.EventType()).Msg("emit event")
	}
}

func (e *Executor) emitDeployment(id int64, status, reason, failedStep string) {
	e.emit(protocol.DeploymentStatus{
		DeploymentID: id, Status: status, Reason: reason, FailedStep: failedStep, At: time.Now().UTC(),
	})
}

// Deploy starts a deployment's pipeline and returns at once; progress is
// reported through events. Delivering the same deploy twice is harmless.
func (e *Executor) Deploy(ctx context.Context, req protocol.DeployRequest) error {
	if deleted, err := e.st.Deleted(req.Spec.DeploymentID); err != nil {
		return fmt.Errorf("deploy: %w", err)
	} else if deleted {
		// Sent before its delete and delivered after it (a replica that
		// lost the node meanwhile): starting it would leave containers of
		// a deployment the control plane already deleted.
		return fmt.Errorf("deploy %d: the deployment was deleted on this node", req.Spec.DeploymentID)
	}
	return e.deploy(ctx, req, false)
}

// deploy starts the pipeline of req (Deploy without the deleted check:
// sync's full desired state is authoritative). With leftovers, what the
// runtime holds of the deployment is removed before the pipeline starts.
func (e *Executor) deploy(_ context.Context, req protocol.DeployRequest, leftovers bool) error {
	spec := req.Spec
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if _, err := spec.Graph.Order(); err != nil {
		return fmt.Errorf("deploy %d: %w", spec.DeploymentID, err)
	}
	id := spec.DeploymentID
	e.mu.Lock()
	if e.ctx.Err() != nil {
		e.mu.Unlock()
		return errors.New("deploy: agent is shutting down")
	}
	if _, busy := e.runs[id]; busy {
		e.mu.Unlock()
		return nil
	}
	e.mu.Unlock()
	if d, err := e.st.Get(id); err == nil {
		switch d.Status {
		case state.StatusRunning, state.StatusDeploying:
			return nil // already there (or being built): idempotent
		case state.StatusDeleting:
			return fmt.Errorf("deploy %d: deployment is being deleted", id)
		}
	}
	e.mon.setSecrets(id, spec.Secrets)
	d := &state.Deployment{ID: id, Spec: spec, Status: state.StatusDeploying, Steps: map[string]*state.Step{}}
	for _, n := range spec.Graph.Nodes {
		d.Steps[n.ID] = &state.Step{Kind: n.Kind, Status: protocol.StepPending}
	}
	if err := e.st.Put(d); err != nil {
		return fmt.Errorf("deploy %d: %w", id, err)
	}
	ctx, cancel := context.WithCancelCause(e.ctx)
	r := &run{cancel: cancel, done: make(chan struct{})}
	e.mu.Lock()
	e.runs[id] = r
	e.mu.Unlock()
	e.emitDeployment(id, protocol.StatusDeploying, "", "")
	now := time.Now().UTC()
	for _, n := range spec.Graph.Nodes {
		e.emit(protocol.StepStatus{DeploymentID: id, Step: n.ID, Kind: n.Kind, Status: protocol.StepPending, At: now})
	}
	e.go_(func() {
		defer func() {
			e.mu.Lock()
			delete(e.runs, id)
			e.mu.Unlock()
			close(r.done)
			cancel(nil)
		}()
		if leftovers {
			e.removeLeftovers(ctx, id)
		}
		e.runPipeline(ctx, spec, d)
	})
	return nil
}

// removeLeftovers removes what the runtime holds of deployment id before
// its pipeline runs from the start (sync of a deployment unknown here).
// A failure is logged: the pipeline then meets what is left and fails or
// replaces it as it would without this.
func (e *Executor) removeLeftovers(ctx context.Context, id int64) {
	removed, err := e.rt.RemoveDeployment(ctx, id)
	if err != nil {
		e.log.Error().Err(err).Int64("deployment", id).Msg("sync: remove what is left of a deployment unknown here")
		return
	}
	e.log.Info().Int64("deployment", id).Strs("removed", removed).Msg("sync: removed what was left of a deployment unknown here before deploying it again")
}

// Delete removes a deployment: a running pipeline is stopped first, then
// every container, network and volume of the deployment on this node is
// removed and "deleted" is reported. It returns at once.
func (e *Executor) Delete(_ context.Context, req protocol.DeleteRequest) error {
	if err := req.Validate(); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	e.go_(func() { e.deleteDeployment(req.DeploymentID) })
	return nil
}

// Cancel is Delete for a deploying deployment (docs/architecture.md, "Deployments": cancel
// of a deploying deployment = delete).
// With a FailReason the pipeline is stopped, rolled back and reported
// failed with that reason instead.
func (e *Executor) Cancel(ctx context.Context, req protocol.DeleteRequest) error {
	if req.FailReason == "" {
		return e.Delete(ctx, req)
	}
	if err := req.Validate(); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	e.go_(func() { e.failDeployment(req.DeploymentID, req.FailReason) })
	return nil
}

// failCause is the cancel cause of a pipeline the control plane gave up on.
type failCause struct{ reason string }

func (f *failCause) Error() string { return f.reason }

// failDeployment stops a deploying deployment's pipeline, which then
// rolls back and reports failed with reason. A deployment recorded as
// deploying (or not known here) without a pipeline in progress is rolled
// back and failed here; any other is left alone (it finished meanwhile).
func (e *Executor) failDeployment(id int64, reason string) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r != nil {
		r.cancel(&failCause{reason: reason})
		<-r.done
		return
	}
	l := e.lockFor(id)
	l.Lock()
	defer l.Unlock()
	d, err := e.st.Get(id)
	if err == nil && d.Status != state.StatusDeploying {
		return
	}
	ctx := context.WithoutCancel(e.ctx)
	if _, err := e.rt.RemoveDeployment(ctx, id); err != nil {
		reason += "; rollback incomplete: " + err.Error()
	}
	if d != nil {
		d.Status, d.Reason = state.StatusFailed, reason
		if err := e.st.Put(d); err != nil {
			e.log.Error().Err(err).Int64("deployment", id).Msg("save failed deployment")
		}
	}
	e.emitDeployment(id, protocol.StatusFailed, reason, "")
}

// stopPipeline cancels a running pipeline of id and waits until it ended.
func (e *Executor) stopPipeline(id int64) {
	e.mu.Lock()
	r := e.runs[id]
	e.mu.Unlock()
	if r != nil {
		r.cancel(errDeleted)
		<-r.done
	}
}

func (e *Executor) deleteDeployment(id int64) {
	e.stopPipeline(id)
	l := e.lockFor(id)
	l.Lock()
	defer l.Unlock()
	ctx := context.WithoutCancel(e.ctx)
	d, err := e.st.Get(id)
	if err == nil {
		d.Status = state.StatusDeleting
		if perr := e.st.Put(d); perr != nil {
			e.log.Error().Err(perr).Int64("deployment", id).Msg("mark deleting")
		}
	}
	if err := e.st.MarkDeleted(id); err != nil {
		e.log.Error().Err(err).Int64("deployment", id).Msg("remember the delete")
	}
	removed, err := e.rt.RemoveDeployment(ctx, id)
	if err != nil {
		// Leave the record as "deleting": Recover and the next sync retry.
		e.log.Error().Err(err).Int64("deployment", id).Strs("removed", removed).Msg("delete deployment")
		return
	}
	if err := e.st.Delete(id); err != nil {
		e.log.Error().Err(err).Int64("deployment", id).Msg("forget deployment")
	}
	e.mon.forget(id)
	e.log.Info().Int64("deployment", id).Int("objects", len(removed)).Msg("deployment deleted")
	e.emitDeployment(id, protocol.StatusDeleted, "", "")
}

// ensureImage is the runtime's EnsureImage for a step (or a pre-pull) with its
// own registry credentials. An image pulled with credentials is recorded
// as private; a cached image is handed out only after its registry
// confirmed the step's credentials (a manifest request through the daemon)
// when the step has credentials or the image is recorded private — so an
// image one registry's credentials pulled never reaches a step whose
// credentials (or lack of them) cannot pull it.
func (e *Executor) ensureImage(ctx context.Context, ref string, auth *protocol.RegistryAuth, progress func(string)) (bool, error) {
	id, err := e.rt.ImageID(ctx, ref)
	if err != nil {
		return false, err
	}
	if id != "" {
		private, err := e.st.PrivateImage(id)
		if err != nil {
			return false, err
		}
		if private || runtime.HasCredentials(auth) {
			if err := e.rt.CheckAccess(ctx, ref, auth); err != nil {
				return false, err
			}
		}
	}
	pulled, err := e.rt.EnsureImage(ctx, ref, auth, progress)
	if err != nil || !runtime.HasCredentials(auth) {
		return pulled, err
	}
	if id, err = e.rt.ImageID(ctx, ref); err == nil && id != "" {
		err = e.st.MarkPrivateImage(id, ref)
	}
	return pulled, err
}

// UpdatePlugins pre-pulls the plugin images of the catalog in the
// background so the first step that needs one does not wait.
func (e *Executor) UpdatePlugins(_ context.Context, req protocol.PluginsUpdate) error {
	plugins := slices.Clone(req.Plugins)
	e.go_(func() {
		for _, p := range plugins {
			if p.Image == "" {
				continue
			}
			ctx, cancel := context.WithTimeout(e.ctx, 10*time.Minute)
			pulled, err := e.ensureImage(ctx, p.Image, p.Auth, nil)
			cancel()
			if err != nil {
				e.log.Warn().Err(err).Str("plugin", p.Name).Msg("pre-pull plugin image")
				continue
			}
			if pulled {
				e.log.Info().Str("plugin", p.Name).Str("image", p.Image).Msg("plugin image pulled")
			}
		}
	})
	return nil
}

// Recover runs once at start-up. A pipeline that was mid-way when the
// agent stopped cannot resume (its secrets were only in memory), so it is
// failed and rolled back — never left half-made. Unfinished deletes are
// finished. Running deployments are left to the next sync.
func (e *Executor) Recover(ctx context.Context) error {
	ds, err := e.st.List()
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, d := range ds {
		switch d.Status {
		case state.StatusDeploying:
			e.failInterrupted(ctx, d)
		case state.StatusDeleting:
			e.deleteDeployment(d.ID)
		case state.StatusFailed:
			// Rolled back already; make sure (a crash may have cut it short).
			if _, err := e.rt.RemoveDeployment(ctx, d.ID); err != nil {
				e.log.Error().Err(err).Int64("deployment", d.ID).Msg("recover: clean failed deployment")
			}
		}
	}
	return nil
}

func (e *Executor) failInterrupted(ctx context.Context, d *state.Deployment) {
	failed := ""
	now := time.Now().UTC()
	for _, n := range d.Spec.Graph.Nodes {
		s := d.Steps[n.ID]
		if s == nil {
			continue
		}
		switch s.Status {
		case protocol.StepRunning:
			if failed == "" {
				failed = n.ID
			}
			s.Status, s.Message, s.FinishedAt = protocol.StepFailed, "interrupted by an agent restart", now
			e.emit(protocol.StepStatus{DeploymentID: d.ID, Step: n.ID, Kind: n.Kind, Status: protocol.StepFailed, Attempt: s.Attempt, Message: s.Message, At: now})
		case protocol.StepPending:
			s.Status, s.FinishedAt = protocol.StepSkipped, now
			e.emit(protocol.StepStatus{DeploymentID: d.ID, Step: n.ID, Kind: n.Kind, Status: protocol.StepSkipped, Attempt: s.Attempt, At: now})
		}
	}
	reason := "the agent restarted while the pipeline was running; it was rolled back (secrets are kept in memory only, so a pipeline cannot resume)"
	if _, err := e.rt.RemoveDeployment(ctx, d.ID); err != nil {
		e.log.Error().Err(err).Int64("deployment", d.ID).Msg("recover: roll back")
		reason += "; rollback incomplete: " + err.Error()
	}
	d.Status, d.Reason, d.FailedStep = state.StatusFailed, reason, failed
	if err := e.st.Put(d); err != nil {
		e.log.Error().Err(err).Int64("deployment", d.ID).Msg("recover: save")
	}
	e.log.Warn().Int64("deployment", d.ID).Str("step", failed).Msg("interrupted pipeline failed and rolled back")
	e.emitDeployment(d.ID, protocol.StatusFailed, reason, failed)
}
