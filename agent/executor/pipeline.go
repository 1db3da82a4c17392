package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/agent/state"
	"github.com/nullops/nullops/protocol"
)

// scheduler hands out the nodes whose predecessors all succeeded, in the
// graph's execution order (protocol.Graph.Order, the order the server's
// dry run shows): run one at a time, the nodes run exactly in that order;
// run in parallel, the nodes that become ready together start in it.
type scheduler struct {
	rank      map[string]int
	remaining map[string]int
	succ      map[string][]string
	ready     []string // sorted by rank
}

func newScheduler(g protocol.Graph) (*scheduler, error) {
	order, err := g.Order()
	if err != nil {
		return nil, err
	}
	s := &scheduler{rank: make(map[string]int, len(order)), remaining: map[string]int{}, succ: map[string][]string{}}
	for i, id := range order {
		s.rank[id] = i
	}
	seen := map[[2]string]bool{}
	for _, e := range g.Edges {
		if seen[e] {
			continue
		}
		seen[e] = true
		s.remaining[e[1]]++
		s.succ[e[0]] = append(s.succ[e[0]], e[1])
	}
	for _, id := range order {
		if s.remaining[id] == 0 {
			s.ready = append(s.ready, id)
		}
	}
	return s, nil
}

// take returns the nodes ready to start, in execution order, and forgets
// them.
func (s *scheduler) take() []string {
	r := s.ready
	s.ready = nil
	return r
}

// done records that id succeeded: successors whose predecessors are all
// done become ready.
func (s *scheduler) done(id string) {
	for _, n := range s.succ[id] {
		if s.remaining[n]--; s.remaining[n] == 0 {
			s.ready = append(s.ready, n)
		}
	}
	slices.SortFunc(s.ready, func(a, b string) int { return s.rank[a] - s.rank[b] })
}

// ancestors returns, for every node, the set of its transitive predecessors.
func ancestors(g protocol.Graph) map[string]map[string]bool {
	preds := map[string][]string{}
	for _, e := range g.Edges {
		preds[e[1]] = append(preds[e[1]], e[0])
	}
	memo := map[string]map[string]bool{}
	var walk func(string) map[string]bool
	walk = func(id string) map[string]bool {
		if m, ok := memo[id]; ok {
			return m
		}
		m := map[string]bool{}
		memo[id] = m
		for _, p := range preds[id] {
			m[p] = true
			for a := range walk(p) {
				m[a] = true
			}
		}
		return m
	}
	for _, n := range g.Nodes {
		walk(n.ID)
	}
	return memo
}

// pipeline is the in-memory state of one running pipeline. Secrets and
// raw outputs live here only.
type pipeline struct {
	e       *Executor
	spec    protocol.DeploySpec
	d       *state.Deployment
	red     redactor
	network runtime.Network
	anc     map[string]map[string]bool

	mu       sync.Mutex
	outputs  map[string]map[string]string // raw (unredacted) outputs by step
	services map[string]runtime.ServiceInfo
}

// stepError is a failed step with the reason reported to the server.
type stepError struct {
	step   string
	reason string
}

func (s *stepError) Error() string { return s.reason }

func (p *pipeline) id() int64 { return p.spec.DeploymentID }

// setStep updates a step's record, persists it and emits its status.
func (p *pipeline) setStep(node protocol.Node, status string, attempt int, msg string, outputs map[string]string) {
	now := time.Now().UTC()
	msg = p.red.mask(msg)
	outputs = p.red.placeholderMap(outputs)
	p.mu.Lock()
	s := p.d.Steps[node.ID]
	if s == nil {
		s = &state.Step{Kind: node.Kind}
		p.d.Steps[node.ID] = s
	}
	s.Status, s.Attempt, s.Message = status, attempt, msg
	if outputs != nil {
		s.Outputs = outputs
	}
	switch status {
	case protocol.StepRunning:
		if s.StartedAt.IsZero() {
			s.StartedAt = now
		}
	case protocol.StepSucceeded, protocol.StepFailed, protocol.StepSkipped:
		s.FinishedAt = now
	}
	if info, ok := p.services[node.ID]; ok {
		s.ContainerID, s.HostPort = info.ID, info.HostPort
	}
	err := p.e.st.Put(p.d)
	p.mu.Unlock()
	if err != nil {
		p.e.log.Error().Err(err).Int64("deployment", p.id()).Msg("save step progress")
	}
	p.e.emit(protocol.StepStatus{
		DeploymentID: p.id(), Step: node.ID, Kind: node.Kind, Status: status, Attempt: attempt,
		Message: msg, Outputs: outputs, At: now,
	})
}

// stepLogLine emits one (masked) line of a step's log.
func (p *pipeline) stepLogLine(step string, attempt int, line string) {
	p.e.emit(protocol.StepLog{DeploymentID: p.id(), Step: step, Attempt: attempt, Chunk: p.red.mask(line) + "\n", At: time.Now().UTC()})
}

func (p *pipeline) scopeFor(step string) scope {
	p.mu.Lock()
	defer p.mu.Unlock()
	outs := make(map[string]map[string]string, len(p.outputs))
	for k, v := range p.outputs {
		outs[k] = v
	}
	return scope{secrets: p.spec.Secrets, outputs: outs, visible: p.anc[step]}
}

// runPipeline builds the deployment. It owns the deployment's lock for the
// whole run; on failure it rolls back and reports failed; when stopped by
// delete it leaves the rollback to deleteDeployment.
func (e *Executor) runPipeline(ctx context.Context, spec protocol.DeploySpec, d *state.Deployment) {
	l := e.lockFor(spec.DeploymentID)
	l.Lock()
	defer l.Unlock()
	p := &pipeline{
		e: e, spec: spec, d: d, red: newRedactor(spec.Secrets), anc: ancestors(spec.Graph),
		outputs: map[string]map[string]string{}, services: map[string]runtime.ServiceInfo{},
	}
	log := e.log.With().Int64("deployment", spec.DeploymentID).Logger()
	log.Info().Str("name", spec.Name).Int("nodes", len(spec.Graph.Nodes)).Msg("pipeline started")
	started := time.Now()

	failure := p.build(ctx)
	if failure == nil {
		d.Status = state.StatusRunning
		d.Reason, d.FailedStep = "", ""
		p.mu.Lock()
		err := e.st.Put(d)
		p.mu.Unlock()
		if err != nil {
			log.Error().Err(err).Msg("save running")
		}
		log.Info().Dur("took", time.Since(started)).Msg("deployment running")
		e.emitDeployment(spec.DeploymentID, protocol.StatusRunning, "", "")
		return
	}
	if errors.Is(context.Cause(ctx), errDeleted) {
		log.Info().Msg("pipeline stopped by delete")
		return // deleteDeployment rolls back and reports
	}
	if e.ctx.Err() != nil {
		log.Warn().Msg("pipeline interrupted by shutdown; the next start rolls it back")
		return
	}
	reason := failure.reason
	if failure.step != "" {
		reason = fmt.Sprintf("step %s failed: %s", failure.step, failure.reason)
	}
	var given *failCause
	if errors.As(context.Cause(ctx), &given) {
		reason = given.reason
		if failure.step != "" {
			reason += fmt.Sprintf(" (step %s was running)", failure.step)
		}
	}
	reason = p.red.mask(reason)
	log.Warn().Str("step", failure.step).Str("reason", reason).Msg("pipeline failed; rolling back")
	rctx := context.WithoutCancel(ctx)
	if _, err := e.rt.RemoveDeployment(rctx, spec.DeploymentID); err != nil {
		log.Error().Err(err).Msg("rollback")
		reason += "; rollback incomplete: " + err.Error()
	}
	d.Status, d.Reason, d.FailedStep = state.StatusFailed, reason, failure.step
	p.mu.Lock()
	err := e.st.Put(d)
	p.mu.Unlock()
	if err != nil {
		log.Error().Err(err).Msg("save failed")
	}
	e.emitDeployment(spec.DeploymentID, protocol.StatusFailed, reason, failure.step)
}

// build runs every node in dependency order, independent branches in
// parallel. It returns the first failure (nil when everything succeeded).
func (p *pipeline) build(ctx context.Context) *stepError {
	nodes := map[string]protocol.Node{}
	for _, n := range p.spec.Graph.Nodes {
		nodes[n.ID] = n
	}
	net, err := p.e.rt.EnsureNetwork(ctx, runtime.NetworkSpec{DeploymentID: p.id(), Resources: p.spec.Resources})
	if err != nil {
		if ctx.Err() != nil {
			return p.cancelled(nodes, nil)
		}
		p.skipAll(nodes, nil)
		return &stepError{reason: fmt.Sprintf("create deployment network: %v", err)}
	}
	p.network = net

	sched, err := newScheduler(p.spec.Graph)
	if err != nil {
		p.skipAll(nodes, nil)
		return &stepError{reason: err.Error()}
	}
	stepCtx, stopSteps := context.WithCancel(ctx)
	defer stopSteps()
	type result struct {
		id  string
		err *stepError
	}
	results := make(chan result)
	started := map[string]bool{}
	running := 0
	var failure *stepError
	for ready := sched.take(); len(ready) > 0 || running > 0; ready = sched.take() {
		if failure == nil && stepCtx.Err() == nil {
			for _, id := range ready {
				started[id] = true
				running++
				n := nodes[id]
				go func() { results <- result{id, p.runNode(stepCtx, n)} }()
			}
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err != nil {
			if failure == nil {
				failure = r.err
			}
			stopSteps()
			continue
		}
		sched.done(r.id)
	}
	if failure == nil && ctx.Err() != nil {
		return p.cancelled(nodes, started)
	}
	if failure != nil {
		p.skipAll(nodes, started)
	}
	return failure
}

// cancelled marks never-started nodes skipped and returns the cancel error.
func (p *pipeline) cancelled(nodes map[string]protocol.Node, started map[string]bool) *stepError {
	p.skipAll(nodes, started)
	return &stepError{reason: "cancelled"}
}

func (p *pipeline) skipAll(nodes map[string]protocol.Node, started map[string]bool) {
	for _, n := range p.spec.Graph.Nodes {
		if !started[n.ID] {
			p.setStep(nodes[n.ID], protocol.StepSkipped, 0, "", nil)
		}
	}
}

// runNode runs one node with its retries; it reports running, then
// succeeded or failed, and returns the failure.
func (p *pipeline) runNode(ctx context.Context, n protocol.Node) *stepError {
	attempts := 1
	backoff := 2 * time.Second
	if n.Retries != nil && n.Retries.Count > 0 {
		attempts += n.Retries.Count
		if n.Retries.Backoff != "" {
			if b, err := time.ParseDuration(n.Retries.Backoff); err == nil && b >= 0 {
				backoff = b
			}
		}
	}
	var last string
	for attempt := 1; attempt <= attempts; attempt++ {
		msg := ""
		if attempt > 1 {
			msg = fmt.Sprintf("attempt %d of %d after: %s", attempt, attempts, last)
		}
		p.setStep(n, protocol.StepRunning, attempt, msg, nil)
		var outputs map[string]string
		var err error
		var retryable bool
		switch n.Kind {
		case protocol.KindService:
			outputs, retryable, err = p.runService(ctx, n, attempt)
		case protocol.KindComponent:
			outputs, retryable, err = p.runPlugin(ctx, n, attempt)
		default:
			err = fmt.Errorf("unknown node kind %q", n.Kind)
		}
		if err == nil {
			p.mu.Lock()
			p.outputs[n.ID] = outputs
			p.mu.Unlock()
			p.setStep(n, protocol.StepSucceeded, attempt, "", outputs)
			return nil
		}
		if ctx.Err() != nil {
			p.setStep(n, protocol.StepFailed, attempt, "cancelled", nil)
			return &stepError{step: n.ID, reason: "cancelled"}
		}
		last = err.Error()
		if !retryable || attempt == attempts {
			p.setStep(n, protocol.StepFailed, attempt, last, nil)
			return &stepError{step: n.ID, reason: last}
		}
		p.stepLogLine(n.ID, attempt, fmt.Sprintf("attempt %d failed: %s; retrying in %s", attempt, last, backoff))
		select {
		case <-ctx.Done():
			p.setStep(n, protocol.StepFailed, attempt, "cancelled", nil)
			return &stepError{step: n.ID, reason: "cancelled"}
		case <-time.After(backoff):
		}
	}
	return &stepError{step: n.ID, reason: last}
}
