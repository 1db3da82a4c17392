package executor

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/agent/state"
	"github.com/nullops/nullops/protocol"
)

// monitor keeps the truth about service containers after their pipeline
// step: it follows the daemon's start/die/oom events, remembers each
// container's last exit and reports every change of state (running,
// restarting, exited, oom-killed), restart count or last exit as a
// service.state event with the last lines of the log, secret values
// masked. It also gives the health wait the exits it must fail on at once.
type monitor struct {
	mu       sync.Mutex
	exits    map[string]runtime.Exit // by container id
	changed  chan struct{}           // closed and replaced on every exit
	reported map[string]reportKey    // by container id
	red      map[int64]redactor      // by deployment, from deploy and sync (memory only)
}

type reportKey struct {
	deployment int64
	state      string
	restarts   int
	exit       int
	exitAt     time.Time
}

// lastLinesTail is how many log lines a crash report carries.
const lastLinesTail = 20

func newMonitor() *monitor {
	return &monitor{exits: map[string]runtime.Exit{}, changed: make(chan struct{}),
		reported: map[string]reportKey{}, red: map[int64]redactor{}}
}

func (m *monitor) recordExit(x runtime.Exit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exits[x.ID] = x
	close(m.changed)
	m.changed = make(chan struct{})
}

// exit returns the last recorded exit of a container and a channel closed
// at the next recorded exit of any container.
func (m *monitor) exit(containerID string) (runtime.Exit, bool, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.exits[containerID]
	return x, ok, m.changed
}

func (m *monitor) setSecrets(id int64, secrets map[string]string) {
	m.mu.Lock()
	m.red[id] = newRedactor(secrets)
	m.mu.Unlock()
}

func (m *monitor) redactor(id int64) (redactor, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.red[id]
	return r, ok
}

// forget drops what is kept about a deployment.
func (m *monitor) forget(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.red, id)
	for c, x := range m.exits {
		if x.DeploymentID == id {
			delete(m.exits, c)
		}
	}
	for c, k := range m.reported {
		if k.deployment == id {
			delete(m.reported, c)
		}
	}
}

// changedSince records key as reported for the container and says whether
// it differs from the last report.
func (m *monitor) changedSince(containerID string, k reportKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.reported[containerID]; ok && old == k {
		return false
	}
	m.reported[containerID] = k
	return true
}

// watchServices runs until the executor closes.
func (e *Executor) watchServices() {
	e.rt.WatchServices(e.ctx, 2*time.Second, e.sweepServices, func(ev runtime.ServiceEvent) {
		if ev.Exit != nil {
			e.mon.recordExit(*ev.Exit)
		}
		if ev.Action == runtime.EventOOM {
			return
		}
		ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
		defer cancel()
		info, err := e.rt.InspectService(ctx, ev.ID)
		if err != nil {
			return // removed meanwhile
		}
		e.observe(ctx, ev.DeploymentID, ev.Service, info)
	})
}

// sweepServices inspects every service container of this node (after the
// event stream was interrupted, and with each metrics sample).
func (e *Executor) sweepServices() {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	objs, err := e.rt.ListManaged(ctx, 0)
	if err != nil {
		return
	}
	for _, o := range objs {
		if o.Kind != runtime.KindWorkload || o.Service == "" {
			continue
		}
		if info, err := e.rt.InspectService(ctx, o.ID); err == nil {
			e.observe(ctx, o.DeploymentID, o.Service, info)
		}
	}
}

// observe reports a service container's state when it changed. Only
// services whose step succeeded are reported (until then the pipeline's
// health wait owns them).
func (e *Executor) observe(ctx context.Context, id int64, service string, info runtime.ServiceInfo) {
	d, err := e.st.Get(id)
	if err != nil || d.Status == state.StatusDeleting || d.Status == state.StatusFailed {
		return
	}
	step := d.Steps[service]
	if step == nil || step.Status != protocol.StepSucceeded {
		return
	}
	var node protocol.Node
	for _, n := range d.Spec.Graph.Nodes {
		if n.ID == service {
			node = n
		}
	}
	if node.ID == "" {
		return
	}
	st := e.crashState(ctx, id, node, d.Spec, info)
	k := reportKey{deployment: id, state: st.State, restarts: st.RestartCount, exitAt: st.LastExitAt}
	if st.ExitCode != nil {
		k.exit = *st.ExitCode
	}
	if !e.mon.changedSince(info.ID, k) {
		return
	}
	if st.State != protocol.ServiceRunning || st.RestartCount > 0 {
		e.log.Warn().Int64("deployment", id).Str("service", service).Str("state", st.State).
			Int("restarts", st.RestartCount).Msg("service crashed")
	}
	e.emit(st)
}

// crashState is serviceState plus the crash details: state, restart
// count, last exit (from the daemon's events, else from inspect) and, after
// a crash, the last log lines masked with the deployment's secrets (left
// out when they are not known here yet).
func (e *Executor) crashState(ctx context.Context, id int64, n protocol.Node, spec protocol.DeploySpec, info runtime.ServiceInfo) protocol.ServiceState {
	st := serviceState(id, n, spec, info)
	x, ok, _ := e.mon.exit(info.ID)
	switch {
	case ok:
		code := x.ExitCode
		st.ExitCode, st.LastExitOOM, st.LastExitAt = &code, x.OOMKilled, x.At
	case !info.FinishedAt.IsZero() && (info.State() != runtime.StateRunning || info.RestartCount > 0):
		code := info.ExitCode
		st.ExitCode, st.LastExitOOM, st.LastExitAt = &code, info.OOMKilled, info.FinishedAt.UTC()
	}
	if st.LastExitOOM && info.State() != runtime.StateRunning {
		st.State = protocol.ServiceOOMKilled
	}
	if st.ExitCode != nil {
		if red, ok := e.mon.redactor(id); ok {
			st.LastLines = e.lastLines(ctx, info.ID, red)
		}
	}
	return st
}

// lastLines is the end of a container's log, masked and bounded.
func (e *Executor) lastLines(ctx context.Context, containerID string, red redactor) string {
	s := red.mask(strings.TrimRight(e.logTail(ctx, containerID, lastLinesTail), "\n"))
	if len(s) > protocol.MaxServiceLastLines/2 {
		s = tailString(s, protocol.MaxServiceLastLines/2)
	}
	return strings.ToValidUTF8(s, "")
}
