package placement

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Request is what a deployment needs.
type Request struct {
	CPU      float64 // CPUs
	MemoryMB int64
}

// Candidate is one online, enabled, trusted node of the environment with its
// current figures (read while its row is locked).
type Candidate struct {
	ID       int64
	Name     string
	Labels   map[string]string
	CapCPU   float64 // what the agent reports
	CapMemMB int64
	// AllocCPU/AllocMemMB are the reservations of its live deployments.
	AllocCPU   float64
	AllocMemMB int64
	// OtherCPU is the agent's smoothed figure of CPU used by everything but
	// NullOps' service containers (whose use the reservations stand for).
	OtherCPU float64
	// UsedMemMB is OS-level memory use reported by the agent.
	UsedMemMB int64
	// Overcommit is the environment's cpu_overcommit: reservations plus
	// OtherCPU may reach Overcommit × CapCPU (values below 1 count as 1).
	Overcommit float64
}

func (c Candidate) overcommit() float64 { return max(c.Overcommit, 1) }

// FreeCPU is what is left for a new deployment: the smaller of capacity
// minus reservations and overcommitted capacity minus reservations and
// other use.
func (c Candidate) FreeCPU() float64 {
	return min(c.CapCPU-c.AllocCPU, c.CapCPU*c.overcommit()-c.AllocCPU-max(c.OtherCPU, 0))
}

// FreeMemMB is what memory is left: capacity minus the larger of allocated
// and OS-used (memory is not compressible; it is counted strictly).
func (c Candidate) FreeMemMB() int64 { return c.CapMemMB - max(c.AllocMemMB, c.UsedMemMB) }

// cpuEpsilon absorbs float rounding of sums like 0.1+0.2.
const cpuEpsilon = 1e-9

// Fits reports whether r fits on c. CPU is compressible: reservations count
// strictly (allocated + requested ≤ capacity) and other use only within the
// overcommit (allocated + other + requested ≤ overcommit × capacity), so a
// busy node slows deployments down instead of refusing them. Memory is
// strict: allocated + requested and OS-used + requested ≤ capacity.
func (c Candidate) Fits(r Request) bool {
	return c.AllocCPU+r.CPU <= c.CapCPU+cpuEpsilon &&
		c.AllocCPU+max(c.OtherCPU, 0)+r.CPU <= c.CapCPU*c.overcommit()+cpuEpsilon &&
		c.AllocMemMB+r.MemoryMB <= c.CapMemMB &&
		c.UsedMemMB+r.MemoryMB <= c.CapMemMB
}

// headroom is the smaller of the CPU and memory fractions left after placing
// r; the node with the largest headroom is chosen.
func (c Candidate) headroom(r Request) float64 {
	cpu, mem := 0.0, 0.0
	if c.CapCPU > 0 {
		cpu = (c.FreeCPU() - r.CPU) / c.CapCPU
	}
	if c.CapMemMB > 0 {
		mem = float64(c.FreeMemMB()-r.MemoryMB) / float64(c.CapMemMB)
	}
	return math.Min(cpu, mem)
}

// ErrNoFit is wrapped by every "nothing fits" error.
var ErrNoFit = errors.New("no node fits")

// NoFitError says why nothing fits, in words a user can act on. Message
// names nodes and their free figures (for the create request's error and
// the logs); Public says the same without any node name or figure other
// than what was requested, for answers to anyone who may deploy (the
// placement dry run).
type NoFitError struct{ Message, Public string }

func (e *NoFitError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrNoFit) work.
func (e *NoFitError) Unwrap() error { return ErrNoFit }

// Choose picks the node for r among candidates (already filtered to online,
// enabled, trusted nodes of the environment) that match sel: the fitting node
// with the most headroom, ties broken by name. When nothing fits the error is
// a *NoFitError naming the short resource, e.g.
// "no node in environment qa has 2.0 CPUs free (best: node-1 with 1.5 of 4 free)".
func Choose(env string, candidates []Candidate, sel Selector, r Request) (Candidate, error) {
	if len(candidates) == 0 {
		msg := fmt.Sprintf("no node in environment %s is online, enabled and trusted", env)
		return Candidate{}, &NoFitError{Message: msg, Public: msg}
	}
	var matching []Candidate
	for _, c := range candidates {
		if sel.Matches(c.Labels) {
			matching = append(matching, c)
		}
	}
	if len(matching) == 0 {
		return Candidate{}, &NoFitError{
			Message: fmt.Sprintf("none of the %d available nodes in environment %s matches the project's node selector %s", len(candidates), env, sel),
			Public:  fmt.Sprintf("no available node in environment %s matches the project's node selector", env),
		}
	}
	var fitting []Candidate
	for _, c := range matching {
		if c.Fits(r) {
			fitting = append(fitting, c)
		}
	}
	if len(fitting) > 0 {
		sort.SliceStable(fitting, func(i, j int) bool {
			hi, hj := fitting[i].headroom(r), fitting[j].headroom(r)
			if math.Abs(hi-hj) > 1e-12 {
				return hi > hj
			}
			return fitting[i].Name < fitting[j].Name
		})
		return fitting[0], nil
	}
	return Candidate{}, &NoFitError{Message: noFitMessage(env, matching, r), Public: noFitPublic(env, matching, r)}
}

// noFitPublic is noFitMessage without node names or free figures.
func noFitPublic(env string, nodes []Candidate, r Request) string {
	anyCPU, anyMem := false, false
	for _, c := range nodes {
		anyCPU = anyCPU || c.FreeCPU()+cpuEpsilon >= r.CPU
		anyMem = anyMem || c.FreeMemMB() >= r.MemoryMB
	}
	switch {
	case !anyCPU && !anyMem:
		return fmt.Sprintf("no node in environment %s has %s and %d MB of memory free", env, cpus(r.CPU), r.MemoryMB)
	case !anyCPU:
		return fmt.Sprintf("no node in environment %s has %s free", env, cpus(r.CPU))
	case !anyMem:
		return fmt.Sprintf("no node in environment %s has %d MB of memory free", env, r.MemoryMB)
	}
	return fmt.Sprintf("no node in environment %s has both %s and %d MB of memory free", env, cpus(r.CPU), r.MemoryMB)
}

func noFitMessage(env string, nodes []Candidate, r Request) string {
	cpuOK := func(c Candidate) bool { return c.FreeCPU()+cpuEpsilon >= r.CPU }
	memOK := func(c Candidate) bool { return c.FreeMemMB() >= r.MemoryMB }
	anyCPU, anyMem := false, false
	for _, c := range nodes {
		anyCPU = anyCPU || cpuOK(c)
		anyMem = anyMem || memOK(c)
	}
	var parts []string
	if !anyCPU {
		best := bestBy(nodes, func(c Candidate) float64 { return c.FreeCPU() })
		parts = append(parts, fmt.Sprintf("has %s free (best: %s with %s of %s free)",
			cpus(r.CPU), best.Name, num(math.Max(best.FreeCPU(), 0)), num(best.CapCPU)))
	}
	if !anyMem {
		best := bestBy(nodes, func(c Candidate) float64 { return float64(c.FreeMemMB()) })
		parts = append(parts, fmt.Sprintf("has %d MB of memory free (best: %s with %d of %d MB free)",
			r.MemoryMB, best.Name, max(best.FreeMemMB(), 0), best.CapMemMB))
	}
	if len(parts) == 0 {
		// Each resource is available somewhere, but never both on one node.
		var each []string
		for _, c := range nodes {
			each = append(each, fmt.Sprintf("%s has %s of %s CPUs and %d of %d MB free",
				c.Name, num(math.Max(c.FreeCPU(), 0)), num(c.CapCPU), max(c.FreeMemMB(), 0), c.CapMemMB))
		}
		return fmt.Sprintf("no node in environment %s has both %s and %d MB of memory free (%s)",
			env, cpus(r.CPU), r.MemoryMB, strings.Join(each, "; "))
	}
	return fmt.Sprintf("no node in environment %s %s", env, strings.Join(parts, ", and none "))
}

func bestBy(nodes []Candidate, f func(Candidate) float64) Candidate {
	best := nodes[0]
	for _, c := range nodes[1:] {
		if f(c) > f(best) || (f(c) == f(best) && c.Name < best.Name) {
			best = c
		}
	}
	return best
}

// cpus formats a requested CPU figure with at least one decimal
// ("1.0 CPU", "2.0 CPUs", "0.25 CPUs").
func cpus(v float64) string {
	s := num(v)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	if v == 1 {
		return s + " CPU"
	}
	return s + " CPUs"
}

// num formats a CPU figure with at most two decimals ("4", "1.5", "0.25").
func num(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}
