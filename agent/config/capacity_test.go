package config

import (
	"testing"

	"github.com/nullops/nullops/protocol"
)

type fixedHost struct{}

func (fixedHost) Capacity() protocol.Capacity {
	return protocol.Capacity{CPUs: 8, MemoryMB: 16384, DiskMB: 1000}
}
func (fixedHost) Usage() protocol.Usage {
	return protocol.Usage{CPUPercent: 50, CPUsUsed: 4, OtherCPUs: 7, MemoryUsedMB: 9000, DiskUsedMB: 10}
}

func TestAdvertisedCapacity(t *testing.T) {
	c := Defaults()
	if _, ok := c.Advertised(fixedHost{}).(fixedHost); !ok {
		t.Fatal("nothing configured: the host itself must be returned")
	}
	c.Capacity = Capacity{CPUs: 2, MemoryMB: 32768}
	got := c.Advertised(fixedHost{})
	if cp := got.Capacity(); cp.CPUs != 2 || cp.MemoryMB != 16384 || cp.DiskMB != 1000 {
		t.Fatalf("capacity %+v: want 2 CPUs (capped), 16384 MB (never above the host), disk unchanged", cp)
	}
	if u := got.Usage(); u.CPUsUsed != 4 || u.MemoryUsedMB != 9000 {
		t.Fatalf("usage %+v must stay real without debug.zerousage", u)
	}
	// 6 of the host's 8 CPUs are kept back for other work: of 7 CPUs of
	// other use only 1 competes with deployments.
	if u := got.Usage(); u.OtherCPUs != 1 {
		t.Fatalf("other CPUs %v: want 7 less the 6 kept back", u.OtherCPUs)
	}
	c.Debug.ZeroUsage = true
	if u := c.Advertised(fixedHost{}).Usage(); u.CPUsUsed != 0 || u.CPUPercent != 0 || u.OtherCPUs != 0 || u.MemoryUsedMB != 0 || u.DiskUsedMB != 10 {
		t.Fatalf("zero usage: %+v", u)
	}
	c.Capacity.CPUs = -1
	c.Token = "0123456789abcdef0123"
	if err := c.Validate(); err == nil {
		t.Fatal("negative capacity accepted")
	}
}
