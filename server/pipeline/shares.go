package pipeline

import (
	"fmt"
	"math"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
)

// Smallest share an even split may give a service: below these a container
// cannot do useful work (Docker itself refuses less than 6 MB).
const (
	MinShareCPU      = 0.01
	MinShareMemoryMB = 16
)

// shareEpsilon absorbs float rounding of CPU sums like 0.1+0.2.
const shareEpsilon = 1e-9

// Shares divides a deployment's budget among its containers so that
// together they never use more than placement reserved. Per resource, a node
// with an explicit resources figure gets it; a component node without one
// gets its plugin's limit (plugin(name)); the service nodes without one
// split what is left evenly. Explicit figures and plugin limits together may
// not exceed the budget, and an even split may not fall below MinShareCPU /
// MinShareMemoryMB; either is reported as errs.Fields naming the fields.
func Shares(g protocol.Graph, budget protocol.Resources, plugin func(name string) protocol.Resources) (map[string]protocol.Resources, error) {
	out := make(map[string]protocol.Resources, len(g.Nodes))
	var fixedCPU float64
	var fixedMem int64
	var splitCPU, splitMem []string
	for _, n := range g.Nodes {
		var r protocol.Resources
		if n.Resources != nil {
			r = *n.Resources
		}
		if n.Kind == protocol.KindComponent {
			def := plugin(n.Plugin)
			if r.CPU <= 0 {
				r.CPU = def.CPU
			}
			if r.MemoryMB <= 0 {
				r.MemoryMB = def.MemoryMB
			}
		}
		if r.CPU > 0 {
			fixedCPU += r.CPU
		} else if n.Kind == protocol.KindService {
			splitCPU = append(splitCPU, n.ID)
		}
		if r.MemoryMB > 0 {
			fixedMem += r.MemoryMB
		} else if n.Kind == protocol.KindService {
			splitMem = append(splitMem, n.ID)
		}
		out[n.ID] = r
	}
	p := errs.Fields{}
	restCPU := budget.CPU - fixedCPU
	restMem := budget.MemoryMB - fixedMem
	switch {
	case restCPU < -shareEpsilon:
		p.Add("resources.cpu", "the nodes' CPU shares (explicit and plugin limits) add up to %s, more than the deployment's %s CPUs",
			num(fixedCPU), num(budget.CPU))
	case len(splitCPU) > 0 && restCPU/float64(len(splitCPU)) < MinShareCPU-shareEpsilon:
		p.Add("resources.cpu", "%s CPUs are left for %d services without a cpu share: less than %s each; raise the budget or give them explicit shares",
			num(math.Max(restCPU, 0)), len(splitCPU), num(MinShareCPU))
	default:
		for _, id := range splitCPU {
			r := out[id]
			r.CPU = restCPU / float64(len(splitCPU))
			out[id] = r
		}
	}
	switch {
	case restMem < 0:
		p.Add("resources.memory_mb", "the nodes' memory shares (explicit and plugin limits) add up to %d MB, more than the deployment's %d MB",
			fixedMem, budget.MemoryMB)
	case len(splitMem) > 0 && restMem/int64(len(splitMem)) < MinShareMemoryMB:
		p.Add("resources.memory_mb", "%d MB are left for %d services without a memory share: less than %d MB each; raise the budget or give them explicit shares",
			max(restMem, 0), len(splitMem), MinShareMemoryMB)
	default:
		for _, id := range splitMem {
			r := out[id]
			r.MemoryMB = restMem / int64(len(splitMem))
			out[id] = r
		}
	}
	if len(p) > 0 {
		return nil, p.ErrCode(ErrCode)
	}
	return out, nil
}

// num formats a CPU figure with at most three decimals ("4", "1.5", "0.005").
func num(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	for len(s) > 0 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	if s == "" || s == "-" {
		return "0"
	}
	return s
}
