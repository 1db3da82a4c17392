package hostinfo

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestOtherCPUsLeavesOutNullOpsContainers(t *testing.T) {
	dir := t.TempDir()
	stat := filepath.Join(dir, "stat")
	old := [2]string{procStat, cgroupCPU}
	procStat, cgroupCPU = stat, filepath.Join(dir, "no-cpu.max")
	t.Cleanup(func() { procStat, cgroupCPU = old[0], old[1] })

	// user nice system idle iowait irq softirq steal guest guest_nice
	write := func(line string) {
		if err := os.WriteFile(stat, []byte(line+"\ncpu0 0 0 0 0\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cpu 100 0 100 800 0 0 0 0 50 0")
	s := New(dir)
	s.SetOtherCPUTimeConstant(0) // not smoothed: the figure of this sample
	s.SetManagedCPUs(func() float64 { return 0.25 })
	// 400 more busy jiffies of 800: half of every CPU is in use.
	write("cpu 300 0 300 1200 0 0 0 0 50 0")
	u := s.Usage()
	n := float64(runtime.NumCPU())
	if math.Abs(u.CPUPercent-50) > 1e-9 || math.Abs(u.CPUsUsed-n/2) > 1e-9 {
		t.Fatalf("usage %+v, want 50%% = %v CPUs", u, n/2)
	}
	if want := n/2 - 0.25; math.Abs(u.OtherCPUs-want) > 1e-9 {
		t.Fatalf("other CPUs %v, want %v (OS use less the containers' 0.25)", u.OtherCPUs, want)
	}
	// Containers using more than the OS figure (samples taken at other
	// moments) never make other use negative.
	s.SetManagedCPUs(func() float64 { return 1000 })
	write("cpu 500 0 500 1600 0 0 0 0 50 0")
	if u := s.Usage(); u.OtherCPUs != 0 {
		t.Fatalf("other CPUs %v, want 0", u.OtherCPUs)
	}
}
