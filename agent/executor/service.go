package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// serviceSpec resolves a service node into a container spec; templates are
// expanded with sc (secrets and earlier outputs, in memory only).
func serviceSpec(spec protocol.DeploySpec, n protocol.Node, network string, sc scope) (runtime.ServiceSpec, error) {
	si := spec.Services[n.ID]
	env := map[string]string{}
	for k, v := range si.Env {
		env[k] = v
	}
	for k, v := range n.Env {
		env[k] = v
	}
	env, err := sc.expandMap(env)
	if err != nil {
		return runtime.ServiceSpec{}, fmt.Errorf("env %w", err)
	}
	ports := append([]int(nil), si.Ports...)
	if n.Port > 0 && !containsInt(ports, n.Port) {
		ports = append(ports, n.Port)
	}
	s := runtime.ServiceSpec{
		DeploymentID: spec.DeploymentID, Service: n.ID, Image: si.Image, Auth: si.Auth, Env: env, Ports: ports,
		Resources: serviceLimits(spec, si), Network: network,
		HealthPort: servicePort(spec, n), Health: n.Health,
	}
	if s.Health == nil {
		s.Health = si.Health
	}
	if n.Ingress {
		s.PublishPort = servicePort(spec, n)
	}
	return s, nil
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// servicePort is the node's port, else the first port of the service.
func servicePort(spec protocol.DeploySpec, n protocol.Node) int {
	if n.Port > 0 {
		return n.Port
	}
	if p := spec.Services[n.ID].Ports; len(p) > 0 {
		return p[0]
	}
	return 0
}

func serviceOutputs(spec protocol.DeploySpec, n protocol.Node, info runtime.ServiceInfo) map[string]string {
	out := map[string]string{"host": n.ID, "address": n.ID}
	if port := servicePort(spec, n); port > 0 {
		out["port"] = strconv.Itoa(port)
		out["address"] = n.ID + ":" + strconv.Itoa(port)
	}
	if info.HostPort > 0 {
		out["host_port"] = strconv.Itoa(info.HostPort)
	}
	return out
}

// runService pulls, (re)creates and starts a service container and waits
// for it to be healthy. retryable says whether another attempt may help.
func (p *pipeline) runService(ctx context.Context, n protocol.Node, attempt int) (map[string]string, bool, error) {
	si := p.spec.Services[n.ID]
	pulled, err := p.e.ensureImage(ctx, si.Image, si.Auth, func(line string) { p.stepLogLine(n.ID, attempt, "pull: "+line) })
	if err != nil {
		return nil, true, err
	}
	if pulled {
		p.stepLogLine(n.ID, attempt, "pulled "+si.Image)
	}
	ss, err := serviceSpec(p.spec, n, p.network.Name, p.scopeFor(n.ID))
	if err != nil {
		return nil, false, err
	}
	info, err := p.e.rt.StartService(ctx, ss)
	if err != nil {
		return nil, true, err
	}
	p.mu.Lock()
	p.services[n.ID] = info
	p.mu.Unlock()
	health := n.Health
	if health == nil {
		health = si.Health
	}
	info, err = p.e.waitHealthy(ctx, info, servicePort(p.spec, n), health, p.red.mask, func(line string) { p.stepLogLine(n.ID, attempt, line) })
	if err != nil {
		return nil, true, err
	}
	p.mu.Lock()
	p.services[n.ID] = info
	p.mu.Unlock()
	p.e.emit(serviceState(p.id(), n, p.spec, info))
	return serviceOutputs(p.spec, n, info), false, nil
}

func serviceState(id int64, n protocol.Node, spec protocol.DeploySpec, info runtime.ServiceInfo) protocol.ServiceState {
	state := info.State()
	h := info.Health
	switch {
	case state != runtime.StateRunning:
		h = "unhealthy"
	case h == "":
		h = "healthy"
	}
	return protocol.ServiceState{
		DeploymentID: id, Service: n.ID, ContainerID: info.ID, ContainerPort: servicePort(spec, n),
		HostPort: info.HostPort, RouteHost: info.RouteHost, Running: state == runtime.StateRunning, Health: h,
		State: state, RestartCount: info.RestartCount,
	}
}

// waitHealthy gates "step succeeded": the runtime's verdict on the
// service's health check when it runs them (Capabilities.HealthChecks),
// else an HTTP probe from the agent to the workload's address in the
// deployment network or a command run inside it; the image's own
// HEALTHCHECK; or — with none of those — the workload running. A container that exits fails at once with its exit
// code and the tail of its log.
func (e *Executor) waitHealthy(ctx context.Context, info runtime.ServiceInfo, port int, h *protocol.Health, mask func(string) string, logf func(string)) (runtime.ServiceInfo, error) {
	timeout, interval := e.cfg.HealthTimeout, 500*time.Millisecond
	if h != nil {
		if d, err := time.ParseDuration(h.Timeout); err == nil && d > 0 {
			timeout = d
		}
		if d, err := time.ParseDuration(h.Interval); err == nil && d > 0 {
			interval = d
		}
	}
	deadline := time.Now().Add(timeout)
	var lastProbe string
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		// Docker counts a restarting container as running, and a workload
		// that crashed between two looks is running again with a restart
		// counted: both are exits.
		_, exited, exitCh := e.mon.exit(info.ID)
		if exited || info.State() != runtime.StateRunning || info.RestartCount > 0 {
			return info, e.exitedError(ctx, info, mask)
		}
		ok, detail := false, ""
		switch {
		case e.rt.Capabilities().HealthChecks && h != nil && (h.HTTP != "" || len(h.Command) > 0):
			// The runtime probes (ServiceSpec.Health) and reports the verdict.
			ok = info.Health == "healthy"
			if !ok {
				detail = e.rt.Name() + " health check: " + info.Health
				if info.Health == "" {
					detail = e.rt.Name() + " health check: no verdict yet"
				}
			}
		case h != nil && h.HTTP != "":
			ok, detail = probeHTTP(ctx, client, info, port, h.HTTP)
		case h != nil && len(h.Command) > 0:
			code, out, err := e.rt.Exec(ctx, info.ID, h.Command)
			switch {
			case err != nil:
				detail = err.Error()
			case code != 0:
				detail = fmt.Sprintf("command exited %d: %s", code, maskedTail(mask, out, 300))
			default:
				ok = true
			}
		case info.Health != "":
			ok, detail = info.Health == "healthy", e.rt.Name()+" health: "+info.Health
		default:
			ok = info.Running
		}
		if ok {
			return info, nil
		}
		if detail != lastProbe && detail != "" {
			logf("health: " + detail)
			lastProbe = detail
		}
		if time.Now().After(deadline) {
			return info, fmt.Errorf("not healthy after %s: %s", timeout, detail)
		}
		select {
		case <-ctx.Done():
			return info, ctx.Err()
		case <-time.After(interval):
		case <-exitCh: // some container exited: look again now
		}
		var err error
		if info, err = e.rt.InspectService(ctx, info.ID); err != nil {
			return info, err
		}
	}
}

// probeHTTP asks the service for path at its address in the deployment
// network; 2xx and 3xx are healthy.
func probeHTTP(ctx context.Context, c *http.Client, info runtime.ServiceInfo, port int, path string) (bool, string) {
	if !info.IP.IsValid() || port == 0 {
		return false, "no address to probe (service has no IP or port)"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := fmt.Sprintf("http://%s:%d%s", info.IP, port, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, "GET " + path + ": " + err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("GET %s: status %d", path, resp.StatusCode)
}

// exitedError describes a service container's exit: its exit code (from
// the daemon's die event, waited for briefly, else from inspect), whether
// the OOM killer ended it, Docker's restarts and the last log lines
// (masked with mask before they are shortened).
func (e *Executor) exitedError(ctx context.Context, info runtime.ServiceInfo, mask func(string) string) error {
	x, ok, ch := e.mon.exit(info.ID)
	if !ok {
		select {
		case <-ch:
			x, ok, _ = e.mon.exit(info.ID)
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
	code, oom := info.ExitCode, info.OOMKilled
	if ok {
		code, oom = x.ExitCode, x.OOMKilled
	}
	logs := e.logTail(ctx, info.ID, 20)
	msg := fmt.Sprintf("container exited with code %d", code)
	if oom {
		msg = fmt.Sprintf("container was killed by the OOM killer (exit code %d): it needs more memory than its limit", code)
	}
	if info.RestartCount > 0 {
		msg += fmt.Sprintf(" (%s restarted it %d time(s))", runtimeWord(e.rt.Name()), info.RestartCount)
	}
	if t := strings.TrimSpace(logs); t != "" {
		msg += "; last log lines:\n" + maskedTail(mask, t, 1500)
	}
	return errors.New(msg)
}

// logTail is the end of a container's last lines of log: at most the
// last 16–32 KiB of them, so what is cut off is always far from the end.
// Mask it whole before shortening it further (maskedTail): a secret value
// cut by a shortening near the end would otherwise show in part.
func (e *Executor) logTail(ctx context.Context, containerID string, lines int) string {
	var logs strings.Builder
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = e.rt.Logs(lctx, containerID, lines, false, false, func(_, data string) error {
		logs.WriteString(data)
		if logs.Len() > 32<<10 {
			rest := logs.String()[logs.Len()-16<<10:]
			logs.Reset()
			logs.WriteString(rest)
		}
		return nil
	})
	return logs.String()
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// serviceLimits are a service container's limits: its share of the
// deployment's budget, or (from a server that sent no share) the budget.
func serviceLimits(spec protocol.DeploySpec, si protocol.ServiceImage) protocol.Resources {
	r := si.Resources
	if r.CPU <= 0 {
		r.CPU = spec.Resources.CPU
	}
	if r.MemoryMB <= 0 {
		r.MemoryMB = spec.Resources.MemoryMB
	}
	return r
}

// runtimeWord is a runtime's name as a sentence shows it.
func runtimeWord(name string) string {
	switch name {
	case runtime.Docker:
		return "Docker"
	case runtime.Kubernetes:
		return "Kubernetes"
	}
	return name
}
