package docker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
)

// Usage is one container's resource usage.
type Usage = runtime.Usage

// Stats samples a container's CPU (between two samples the daemon takes)
// and memory usage (minus page cache).
func (r *Runtime) Stats(ctx context.Context, containerID string) (Usage, error) {
	res, err := r.cli.ContainerStats(ctx, containerID, client.ContainerStatsOptions{Stream: false, IncludePreviousSample: true})
	if err != nil {
		return Usage{}, fmt.Errorf("container stats %s: %w", containerID, notFound(err))
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return Usage{}, fmt.Errorf("decode stats %s: %w", containerID, err)
	}
	return usageOf(s), nil
}

func usageOf(s container.StatsResponse) Usage {
	u := Usage{}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpuDelta > 0 && sysDelta > 0 && online > 0 {
		u.CPUPercent = cpuDelta / sysDelta * online * 100
	}
	mem := int64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && int64(v) < mem {
		mem -= int64(v)
	} else if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && int64(v) < mem {
		mem -= int64(v)
	}
	u.MemoryBytes = mem
	return u
}
