package auth

import (
	"bufio"
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nullops/nullops/server/errs"
)

// ErrBusy: every password hashing slot is taken and the short wait for one
// ran out. Callers answer 503 with a Retry-After; nothing was verified.
var ErrBusy = &errs.Error{Kind: errs.Unavailable, Code: "busy", Message: "the server is busy checking other passwords; try again in a moment",
	RetryAfter: BusyRetryAfter}

// BusyRetryAfter is the Retry-After sent with ErrBusy.
const BusyRetryAfter = time.Second

// hashPool bounds concurrent argon2id computations (each allocates the
// parameters' memory, 46 MiB by default). At most len(slots) run at once;
// at most maxWaiters more callers wait (holding no hash memory), each for at
// most maxWait; anyone beyond that gets ErrBusy at once, so no queue grows
// with the load.
type hashPool struct {
	slots      chan struct{}
	waiters    atomic.Int32
	maxWaiters int32
	maxWait    time.Duration
	runs       atomic.Int64 // argon2id computations started
	active     atomic.Int32
	peak       atomic.Int32
}

func newHashPool(size, waiters int, maxWait time.Duration) *hashPool {
	return &hashPool{slots: make(chan struct{}, max(size, 1)), maxWaiters: int32(max(waiters, 0)), maxWait: maxWait}
}

// run calls fn holding a slot, or returns ErrBusy without calling it.
func (p *hashPool) run(ctx context.Context, fn func()) error {
	select {
	case p.slots <- struct{}{}:
	default:
		if p.waiters.Add(1) > p.maxWaiters {
			p.waiters.Add(-1)
			return ErrBusy
		}
		t := time.NewTimer(p.maxWait)
		select {
		case p.slots <- struct{}{}:
			t.Stop()
			p.waiters.Add(-1)
		case <-t.C:
			p.waiters.Add(-1)
			return ErrBusy
		case <-ctx.Done():
			t.Stop()
			p.waiters.Add(-1)
			return ctx.Err()
		}
	}
	defer func() { <-p.slots }()
	p.runs.Add(1)
	n := p.active.Add(1)
	for {
		pk := p.peak.Load()
		if n <= pk || p.peak.CompareAndSwap(pk, n) {
			break
		}
	}
	defer p.active.Add(-1)
	fn()
	return nil
}

// HashSlots sizes the hashing pool: one slot per CPU, but no more than a
// quarter of memoryBytes (0 = unknown) divided by one hash's memory, and
// between 1 and 64.
func HashSlots(cpus int, memoryBytes uint64, p Params) int {
	n := cpus
	if per := uint64(p.Memory) * 1024; memoryBytes > 0 && per > 0 {
		n = min(n, int(min(memoryBytes/4/per, 64)))
	}
	return min(max(n, 1), 64)
}

// availableMemory is the memory this process may use: the Go memory limit
// when set, else the cgroup limit, else the machine's memory; 0 when
// unknown.
func availableMemory() uint64 {
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		return uint64(l)
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			return v
		}
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// DefaultHashSlots is HashSlots for this process's CPUs and memory.
func DefaultHashSlots(p Params) int {
	return HashSlots(runtime.GOMAXPROCS(0), availableMemory(), p)
}
