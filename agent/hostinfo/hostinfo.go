// Package hostinfo reads what the node offers and what it uses at the OS
// level: CPUs (runtime.NumCPU, lowered by a cgroup v2 CPU quota), memory
// (/proc/meminfo, lowered by a cgroup v2 memory limit), disk (statfs of the
// data dir) and CPU usage (deltas of /proc/stat between two samples).
//
// Placement counts OS-level CPU use only as OtherCPUs: what processes other
// than NullOps' service containers use, smoothed over about a minute, so a
// compile or a test run on the node slows deployments down (CPU is
// compressible) but does not refuse them for the moment it lasts.
package hostinfo

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nullops/nullops/protocol"
)

// Paths of the kernel files read; variables so tests can point them at
// fixtures.
var (
	procMeminfo = "/proc/meminfo"
	procStat    = "/proc/stat"
	cgroupCPU   = "/sys/fs/cgroup/cpu.max"
	cgroupMem   = "/sys/fs/cgroup/memory.max"
	cgroupMemIn = "/sys/fs/cgroup/memory.current"
)

// Sampler computes capacity and usage. CPU usage is measured between two
// calls of Usage (the first call measures since the Sampler was created).
type Sampler struct {
	dir string

	mu         sync.Mutex
	busy, all  uint64
	lastPct    float64
	haveSample bool
	managed    func() float64
	other      Smoothed
}

// DefaultOtherCPUTimeConstant is how slowly OtherCPUs follows the measured
// non-NullOps CPU use by default: a change of load shows by about 63% after
// this long.
const DefaultOtherCPUTimeConstant = time.Minute

// New returns a Sampler whose disk figures are those of the file system
// holding dir.
func New(dir string) *Sampler {
	s := &Sampler{dir: dir, other: Smoothed{Tau: DefaultOtherCPUTimeConstant}}
	s.busy, s.all, s.haveSample = readCPU()
	return s
}

// SetOtherCPUTimeConstant sets how slowly OtherCPUs follows the load
// (0: not smoothed).
func (s *Sampler) SetOtherCPUTimeConstant(tau time.Duration) {
	s.mu.Lock()
	s.other.Tau = tau
	s.mu.Unlock()
}

// SetManagedCPUs tells the Sampler how many CPUs NullOps' own service
// containers use now (their latest stats); that part of the OS-level use is
// left out of OtherCPUs, since placement counts it as reservations.
func (s *Sampler) SetManagedCPUs(f func() float64) {
	s.mu.Lock()
	s.managed = f
	s.mu.Unlock()
}

// Capacity is what the node offers.
func (s *Sampler) Capacity() protocol.Capacity {
	c := protocol.Capacity{CPUs: cpus()}
	total, _ := memory()
	c.MemoryMB = total >> 20
	if t, _, ok := disk(s.dir); ok {
		c.DiskMB = t >> 20
	}
	return c
}

// Usage is what the node uses now.
func (s *Sampler) Usage() protocol.Usage {
	u := protocol.Usage{}
	busy, all, ok := readCPU()
	s.mu.Lock()
	if ok && s.haveSample && all > s.all {
		s.lastPct = 100 * float64(busy-s.busy) / float64(all-s.all)
	}
	if ok {
		s.busy, s.all, s.haveSample = busy, all, true
	}
	u.CPUPercent = s.lastPct
	managed := s.managed
	s.mu.Unlock()
	u.CPUsUsed = u.CPUPercent * cpus() / 100
	other := u.CPUsUsed
	if managed != nil {
		other -= managed()
	}
	s.mu.Lock()
	u.OtherCPUs = s.other.Observe(max(other, 0), time.Now())
	s.mu.Unlock()
	_, used := memory()
	u.MemoryUsedMB = used >> 20
	if _, d, ok := disk(s.dir); ok {
		u.DiskUsedMB = d >> 20
	}
	return u
}

// cpus is runtime.NumCPU, or the cgroup v2 quota when lower.
func cpus() float64 {
	n := float64(runtime.NumCPU())
	b, err := os.ReadFile(cgroupCPU)
	if err != nil {
		return n
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return n
	}
	quota, err1 := strconv.ParseFloat(f[0], 64)
	period, err2 := strconv.ParseFloat(f[1], 64)
	if err1 != nil || err2 != nil || period <= 0 || quota <= 0 {
		return n
	}
	if q := quota / period; q < n {
		return q
	}
	return n
}

// memory returns total and used bytes: MemTotal and MemTotal-MemAvailable,
// or the cgroup v2 limit and usage when a limit below MemTotal is set.
func memory() (total, used int64) {
	info := meminfo()
	total = info["MemTotal"]
	if avail, ok := info["MemAvailable"]; ok {
		used = total - avail
	} else {
		used = total - info["MemFree"] - info["Buffers"] - info["Cached"]
	}
	if limit, ok := readInt(cgroupMem); ok && limit > 0 && (total == 0 || limit < total) {
		total = limit
		if cur, ok := readInt(cgroupMemIn); ok {
			used = cur
		}
	}
	if used < 0 {
		used = 0
	}
	return total, used
}

// meminfo parses /proc/meminfo into bytes per key.
func meminfo() map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(procMeminfo)
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && strings.EqualFold(f[1], "kB") {
			v *= 1024
		}
		out[key] = v
	}
	return out
}

func readInt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

// readCPU returns busy and total jiffies of the aggregate "cpu" line.
func readCPU() (busy, all uint64, ok bool) {
	b, err := os.ReadFile(procStat)
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i == 8 || i == 9 { // guest and guest_nice are already in user and nice
			continue
		}
		all += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, all, true
}

// disk returns total and used bytes of the file system holding dir.
func disk(dir string) (total, used int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := int64(st.Bsize)
	return int64(st.Blocks) * bs, int64(st.Blocks-st.Bfree) * bs, true
}
