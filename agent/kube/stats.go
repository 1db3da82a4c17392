package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/protocol"
)

// Usage is the runtime's (memory: the container's working set).
type Usage = runtime.Usage

// summary is the part of the kubelet's summary API (/stats/summary) read
// here.
type summary struct {
	Node struct {
		CPU    *cpuStats `json:"cpu"`
		Memory *memStats `json:"memory"`
	} `json:"node"`
	Pods []struct {
		PodRef struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"podRef"`
		Containers []struct {
			Name   string    `json:"name"`
			CPU    *cpuStats `json:"cpu"`
			Memory *memStats `json:"memory"`
		} `json:"containers"`
	} `json:"pods"`
}

type cpuStats struct {
	UsageNanoCores *uint64 `json:"usageNanoCores"`
}

type memStats struct {
	WorkingSetBytes *uint64 `json:"workingSetBytes"`
}

// summaries caches each node's summary briefly: one metrics round asks
// for every service of the node at once.
type summaries struct {
	mu sync.Mutex
	by map[string]cachedSummary
}

type cachedSummary struct {
	at time.Time
	s  *summary
}

const summaryTTL = 2 * time.Second

// nodeSummary fetches a node's kubelet summary through the API server's
// node proxy (RBAC: nodes/proxy get).
func (r *Runtime) nodeSummary(ctx context.Context, node string) (*summary, error) {
	r.sums.mu.Lock()
	if c, ok := r.sums.by[node]; ok && time.Since(c.at) < summaryTTL {
		r.sums.mu.Unlock()
		return c.s, nil
	}
	r.sums.mu.Unlock()
	raw, err := r.cs.CoreV1().RESTClient().Get().Resource("nodes").Name(node).SubResource("proxy").Suffix("stats/summary").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("kubelet summary of node %s: %w", node, err)
	}
	var s summary
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("kubelet summary of node %s: %w", node, err)
	}
	r.sums.mu.Lock()
	if r.sums.by == nil {
		r.sums.by = map[string]cachedSummary{}
	}
	r.sums.by[node] = cachedSummary{at: time.Now(), s: &s}
	r.sums.mu.Unlock()
	return &s, nil
}

// Stats reads a service's CPU and memory from the kubelet's summary of
// the node its pod runs on.
func (r *Runtime) Stats(ctx context.Context, id string) (Usage, error) {
	ns, name, ok := splitID(id)
	if !ok {
		return Usage{}, fmt.Errorf("stats of %q: not namespace/name: %w", id, runtime.ErrNotFound)
	}
	pods, err := r.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelService + "=" + name})
	if err != nil {
		return Usage{}, fmt.Errorf("stats of %s: %w", id, err)
	}
	pod := newestPod(pods.Items)
	if pod == nil {
		return Usage{}, fmt.Errorf("stats of %s: no pod: %w", id, runtime.ErrNotFound)
	}
	if pod.Spec.NodeName == "" {
		return Usage{}, fmt.Errorf("stats of %s: pod not on a node yet", id)
	}
	s, err := r.nodeSummary(ctx, pod.Spec.NodeName)
	if err != nil {
		return Usage{}, err
	}
	for _, p := range s.Pods {
		if p.PodRef.Namespace != ns || p.PodRef.Name != pod.Name {
			continue
		}
		var u Usage
		for _, c := range p.Containers {
			if c.Name != containerName {
				continue
			}
			if c.CPU != nil && c.CPU.UsageNanoCores != nil {
				u.CPUPercent = float64(*c.CPU.UsageNanoCores) / 1e7
			}
			if c.Memory != nil && c.Memory.WorkingSetBytes != nil {
				u.MemoryBytes = int64(*c.Memory.WorkingSetBytes)
			}
		}
		return u, nil
	}
	return Usage{}, fmt.Errorf("stats of %s: pod %s not in the kubelet's summary yet", id, pod.Name)
}

// Host reports the cluster's capacity for placement and its usage: it is
// the agent channel's Host on Kubernetes (agent/hostinfo on Docker).
type Host struct {
	r   *Runtime
	mu  sync.Mutex
	cap protocol.Capacity
	use protocol.Usage
}

// Host returns the runtime's capacity reporter (runtime.HostProvider).
func (r *Runtime) Host() runtime.Host { return &Host{r: r} }

// Capacity is the allocatable CPU and memory of the cluster's ready,
// schedulable nodes minus the requests of pods that are not this node's
// (other workloads, other agents); the last good figure when the API does
// not answer.
func (h *Host) Capacity() protocol.Capacity {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.r.Capacity(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.cap = c
	}
	return h.cap
}

// Usage is the nodes' CPU and memory use from the kubelets' summaries;
// OtherCPUs is what pods other than this node's services use.
func (h *Host) Usage() protocol.Usage {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := h.r.Usage(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.use = u
	}
	return h.use
}

// schedulable reports whether pods can be placed on n.
func schedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Capacity computes what Host.Capacity reports.
func (r *Runtime) Capacity(ctx context.Context) (protocol.Capacity, error) {
	nodes, err := r.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return protocol.Capacity{}, fmt.Errorf("list nodes: %w", err)
	}
	usable := map[string]bool{}
	var milli, mem int64
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !schedulable(n) {
			continue
		}
		usable[n.Name] = true
		milli += n.Status.Allocatable.Cpu().MilliValue()
		mem += n.Status.Allocatable.Memory().Value()
	}
	pods, err := r.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase!=Succeeded,status.phase!=Failed"})
	if err != nil {
		return protocol.Capacity{}, fmt.Errorf("list pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Labels[LabelManaged] == "true" && p.Labels[LabelNode] == r.nodeLabel {
			continue // the control plane counts its own reservations
		}
		if p.Spec.NodeName != "" && !usable[p.Spec.NodeName] {
			continue
		}
		c, m := podRequests(p)
		milli -= c
		mem -= m
	}
	return protocol.Capacity{CPUs: float64(max(milli, 0)) / 1000, MemoryMB: max(mem, 0) >> 20}, nil
}

// podRequests is what the scheduler counts for a pod: the larger of the
// sum of its containers' requests and its largest init container's, plus
// its overhead.
func podRequests(p *corev1.Pod) (milliCPU, memBytes int64) {
	for _, c := range p.Spec.Containers {
		milliCPU += c.Resources.Requests.Cpu().MilliValue()
		memBytes += c.Resources.Requests.Memory().Value()
	}
	for _, c := range p.Spec.InitContainers {
		milliCPU = max(milliCPU, c.Resources.Requests.Cpu().MilliValue())
		memBytes = max(memBytes, c.Resources.Requests.Memory().Value())
	}
	if p.Spec.Overhead != nil {
		milliCPU += p.Spec.Overhead.Cpu().MilliValue()
		memBytes += p.Spec.Overhead.Memory().Value()
	}
	return milliCPU, memBytes
}

// Usage computes what Host.Usage reports.
func (r *Runtime) Usage(ctx context.Context) (protocol.Usage, error) {
	nodes, err := r.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return protocol.Usage{}, fmt.Errorf("list nodes: %w", err)
	}
	mine := map[[2]string]bool{}
	pods, err := r.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: r.selector(0)})
	if err != nil {
		return protocol.Usage{}, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		mine[[2]string{p.Namespace, p.Name}] = true
	}
	var cpus, used, own float64
	var memUsed int64
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !schedulable(n) {
			continue
		}
		cpus += float64(n.Status.Allocatable.Cpu().MilliValue()) / 1000
		s, err := r.nodeSummary(ctx, n.Name)
		if err != nil {
			return protocol.Usage{}, err
		}
		if s.Node.CPU != nil && s.Node.CPU.UsageNanoCores != nil {
			used += float64(*s.Node.CPU.UsageNanoCores) / 1e9
		}
		if s.Node.Memory != nil && s.Node.Memory.WorkingSetBytes != nil {
			memUsed += int64(*s.Node.Memory.WorkingSetBytes)
		}
		for _, p := range s.Pods {
			if !mine[[2]string{p.PodRef.Namespace, p.PodRef.Name}] {
				continue
			}
			for _, c := range p.Containers {
				if c.CPU != nil && c.CPU.UsageNanoCores != nil {
					own += float64(*c.CPU.UsageNanoCores) / 1e9
				}
			}
		}
	}
	u := protocol.Usage{CPUsUsed: used, OtherCPUs: max(used-own, 0), MemoryUsedMB: memUsed >> 20}
	if cpus > 0 {
		u.CPUPercent = min(used/cpus*100, 100)
	}
	return u, nil
}
