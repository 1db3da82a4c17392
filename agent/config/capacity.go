package config

import (
	ptypes "github.com/traefik/paerser/types"

	"github.com/nullops/nullops/protocol"
)

// Capacity caps what the node advertises to the control plane's placement
// (NULLOPS_CAPACITY_CPUS, NULLOPS_CAPACITY_MEMORYMB or --capacity.cpus /
// --capacity.memorymb): e.g. to keep part of a shared host for other work,
// or to give test agents a small, known capacity. Zero means what the host
// has; a value above what the host has is lowered to it.
type Capacity struct {
	CPUs     float64 `description:"Advertise at most this many CPUs (0 = all the host has)." export:"true"`
	MemoryMB int64   `description:"Advertise at most this much memory in MB (0 = all the host has)." export:"true"`
	// OtherCPUSmoothing is the time constant of usage.other_cpus.
	OtherCPUSmoothing ptypes.Duration `description:"Time constant of the smoothed CPU use of processes other than NullOps' containers, the only OS-level CPU figure placement counts (0 = not smoothed)." export:"true"`
}

// HostInfo is what reports capacity and OS-level usage (agent/hostinfo).
type HostInfo interface {
	Capacity() protocol.Capacity
	Usage() protocol.Usage
}

// Advertised wraps h with the configured capacity caps (and, for tests,
// Debug.ZeroUsage). It returns h itself when nothing is configured.
func (c *Config) Advertised(h HostInfo) HostInfo {
	if c.Capacity.CPUs == 0 && c.Capacity.MemoryMB == 0 && !c.Debug.ZeroUsage {
		return h
	}
	return advertised{h: h, capCPUs: c.Capacity.CPUs, capMemMB: c.Capacity.MemoryMB, zeroUsage: c.Debug.ZeroUsage}
}

type advertised struct {
	h         HostInfo
	capCPUs   float64
	capMemMB  int64
	zeroUsage bool
}

func (a advertised) Capacity() protocol.Capacity {
	c := a.h.Capacity()
	if a.capCPUs > 0 && (c.CPUs == 0 || a.capCPUs < c.CPUs) {
		c.CPUs = a.capCPUs
	}
	if a.capMemMB > 0 && (c.MemoryMB == 0 || a.capMemMB < c.MemoryMB) {
		c.MemoryMB = a.capMemMB
	}
	return c
}

func (a advertised) Usage() protocol.Usage {
	u := a.h.Usage()
	if a.zeroUsage {
		u.CPUPercent, u.CPUsUsed, u.OtherCPUs, u.MemoryUsedMB = 0, 0, 0, 0
		return u
	}
	// CPUs kept back from the advertised capacity are there for other work:
	// other use counts against the advertised CPUs only beyond them.
	if a.capCPUs > 0 {
		if host := a.h.Capacity().CPUs; host > a.capCPUs {
			u.OtherCPUs = max(u.OtherCPUs-(host-a.capCPUs), 0)
		}
	}
	return u
}
