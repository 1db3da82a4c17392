package executor

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// ContainerStats samples CPU and memory of every service container of this
// node (several at a time; a container that cannot be sampled is reported
// with zero usage). The channel adds the result to its periodic metrics
// push; the last sample also feeds /metrics.
func (e *Executor) ContainerStats(ctx context.Context) []protocol.ContainerStats {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	objs, err := e.rt.ListManaged(ctx, 0)
	if err != nil {
		e.log.Warn().Err(err).Msg("container stats: list")
		return nil
	}
	var targets []runtime.Object
	for _, o := range objs {
		if o.Kind == runtime.KindWorkload && o.Service != "" {
			targets = append(targets, o)
		}
	}
	out := make([]protocol.ContainerStats, len(targets))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, o := range targets {
		out[i] = protocol.ContainerStats{DeploymentID: o.DeploymentID, Service: o.Service, Running: o.Running, Health: "unknown"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if o.Running {
				if u, err := e.rt.Stats(ctx, o.ID); err == nil {
					out[i].CPUPercent, out[i].MemoryBytes = u.CPUPercent, u.MemoryBytes
				}
			}
			if info, err := e.rt.InspectService(ctx, o.ID); err == nil {
				// A restarting container is not running, whatever Docker says.
				running := info.State() == runtime.StateRunning
				out[i].Running = running
				switch {
				case !running:
					out[i].Health = "unhealthy"
				case info.Health != "":
					out[i].Health = info.Health
				default:
					out[i].Health = "healthy"
				}
				// The sample doubles as a sweep for crashes whose events were missed.
				e.observe(ctx, o.DeploymentID, o.Service, info)
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(a, b int) bool {
		if out[a].DeploymentID != out[b].DeploymentID {
			return out[a].DeploymentID < out[b].DeploymentID
		}
		return out[a].Service < out[b].Service
	})
	e.statsMu.Lock()
	e.lastStats = out
	e.statsMu.Unlock()
	return out
}

// ManagedCPUs is how many CPUs the service containers used at the latest
// ContainerStats sample.
func (e *Executor) ManagedCPUs() float64 {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	var sum float64
	for _, s := range e.lastStats {
		sum += s.CPUPercent / 100
	}
	return sum
}

// Host reports node capacity and OS usage (agent/hostinfo.Sampler).
type Host interface {
	Capacity() protocol.Capacity
	Usage() protocol.Usage
}

// MetricsHandler serves this node's figures in the Prometheus text format:
// capacity and OS usage from host, deployments by local status, and
// per-container CPU and memory (from the latest ContainerStats sample, taken
// now if there is none yet).
func (e *Executor) MetricsHandler(host Host) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{e: e, host: host})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

var (
	descCapCPU   = prometheus.NewDesc("nullops_agent_capacity_cpus", "CPUs this node offers.", nil, nil)
	descCapMem   = prometheus.NewDesc("nullops_agent_capacity_memory_bytes", "Memory this node offers.", nil, nil)
	descCapDisk  = prometheus.NewDesc("nullops_agent_capacity_disk_bytes", "Disk size of the data dir's file system.", nil, nil)
	descCPUPct   = prometheus.NewDesc("nullops_agent_cpu_used_percent", "OS-level CPU usage of the node (0-100, all CPUs).", nil, nil)
	descMemUsed  = prometheus.NewDesc("nullops_agent_memory_used_bytes", "OS-level memory in use.", nil, nil)
	descDiskUsed = prometheus.NewDesc("nullops_agent_disk_used_bytes", "Disk in use on the data dir's file system.", nil, nil)
	descDeps     = prometheus.NewDesc("nullops_agent_deployments", "Deployments known to this agent by status.", []string{"status"}, nil)
	descCtrCPU   = prometheus.NewDesc("nullops_agent_container_cpu_percent", "CPU of a service container (100 = one core).", []string{"deployment", "service"}, nil)
	descCtrMem   = prometheus.NewDesc("nullops_agent_container_memory_bytes", "Memory of a service container.", []string{"deployment", "service"}, nil)
	descCtrUp    = prometheus.NewDesc("nullops_agent_container_running", "1 when the service container runs.", []string{"deployment", "service"}, nil)
)

type collector struct {
	e    *Executor
	host Host
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.host != nil {
		cp, u := c.host.Capacity(), c.host.Usage()
		g(descCapCPU, cp.CPUs)
		g(descCapMem, float64(cp.MemoryMB<<20))
		g(descCapDisk, float64(cp.DiskMB<<20))
		g(descCPUPct, u.CPUPercent)
		g(descMemUsed, float64(u.MemoryUsedMB<<20))
		g(descDiskUsed, float64(u.DiskUsedMB<<20))
	}
	counts := map[string]int{"deploying": 0, "running": 0, "failed": 0, "deleting": 0}
	if ds, err := c.e.st.List(); err == nil {
		for _, d := range ds {
			counts[d.Status]++
		}
	}
	for s, n := range counts {
		g(descDeps, float64(n), s)
	}
	c.e.statsMu.Lock()
	stats := c.e.lastStats
	c.e.statsMu.Unlock()
	if stats == nil {
		stats = c.e.ContainerStats(context.Background())
	}
	for _, s := range stats {
		id := strconv.FormatInt(s.DeploymentID, 10)
		g(descCtrCPU, s.CPUPercent, id, s.Service)
		g(descCtrMem, float64(s.MemoryBytes), id, s.Service)
		up := 0.0
		if s.Running {
			up = 1
		}
		g(descCtrUp, up, id, s.Service)
	}
}
