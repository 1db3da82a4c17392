package auth_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store/storetest"
)

func TestHashSlotsFollowCPUsAndMemory(t *testing.T) {
	for _, c := range []struct {
		cpus int
		mem  uint64
		want int
	}{
		{cpus: 8, mem: 0, want: 8},           // memory unknown: one per CPU
		{cpus: 8, mem: 16 << 30, want: 8},    // plenty of memory
		{cpus: 8, mem: 512 << 20, want: 2},   // a quarter of 512 MiB holds two 46 MiB hashes
		{cpus: 8, mem: 64 << 20, want: 1},    // never less than one
		{cpus: 1000, mem: 1 << 40, want: 64}, // never more than 64
		{cpus: 0, mem: 0, want: 1},
	} {
		if got := auth.HashSlots(c.cpus, c.mem, auth.DefaultParams); got != c.want {
			t.Errorf("HashSlots(%d CPUs, %d MiB) = %d, want %d", c.cpus, c.mem>>20, got, c.want)
		}
	}
	if n := auth.DefaultHashSlots(auth.DefaultParams); n < 1 || n > runtime.GOMAXPROCS(0) {
		t.Errorf("DefaultHashSlots = %d with %d CPUs", n, runtime.GOMAXPROCS(0))
	}
}

// 64 logins at once, each for another unknown username from another
// address (so the throttle lets all of them through): at most the pool's
// slots hash at once, the callers beyond the slots and their few waiters
// get ErrBusy at once, and the heap stays near what the slots need.
func TestConcurrentLoginsAreBoundedByTheHashingPool(t *testing.T) {
	st := storetest.New(t)
	const mib = 1 << 20
	params := auth.Params{Memory: 16 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	const slots = 2
	svc, err := auth.New(st, zerolog.Nop(), auth.Options{Params: params, HashSlots: slots, HashWaiters: slots, HashWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peakHeap.Load() {
				peakHeap.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	var busy, invalid atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			<-start
			_, err := svc.Login(t.Context(), auth.LoginRequest{Username: fmt.Sprint("nobody", i), Password: "wrong password here",
				ClientAddr: fmt.Sprintf("192.0.2.%d", i)})
			switch {
			case errors.Is(err, auth.ErrBusy):
				busy.Add(1)
			case errors.Is(err, auth.ErrInvalidCredentials):
				invalid.Add(1)
			default:
				t.Errorf("login %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	<-sampled

	hs := svc.HashStats()
	if hs.Peak > slots {
		t.Errorf("%d hashes ran at once, pool has %d slots", hs.Peak, slots)
	}
	// slots run, as many wait (and get their turn within a minute), the
	// rest are refused without hashing. How many arrive while a slot or a
	// wait place is free depends on scheduling (TestFullPoolRefusesAtOnce
	// proves the refusal exactly); here: every refused caller hashed
	// nothing, and most of 64 simultaneous callers were refused.
	if int64(invalid.Load()) != hs.Runs || busy.Load()+invalid.Load() != 64 || busy.Load() < 16 {
		t.Errorf("busy %d, invalid %d, hashes %d; want one hash per invalid and at least 16 busy", busy.Load(), invalid.Load(), hs.Runs)
	}
	// Unbounded, 64 hashes of 16 MiB would hold 1 GiB at once.
	grown := int64(peakHeap.Load()) - int64(base.HeapAlloc)
	t.Logf("heap grew by %d MiB at most (base %d MiB)", grown/mib, base.HeapAlloc/mib)
	if limit := int64(8 * 16 * mib); grown > limit {
		t.Errorf("heap grew by %d MiB, more than %d MiB", grown/mib, limit/mib)
	}
}
