package placement

import (
	"errors"
	"strings"
	"testing"
)

// node is a candidate with overcommit 1 (other CPU use counted strictly).
func node(name string, capCPU float64, capMem int64, allocCPU float64, allocMem int64, otherCPU float64, usedMem int64) Candidate {
	return Candidate{Name: name, CapCPU: capCPU, CapMemMB: capMem, AllocCPU: allocCPU, AllocMemMB: allocMem, OtherCPU: otherCPU, UsedMemMB: usedMem}
}

func TestChoosePicksMostHeadroom(t *testing.T) {
	nodes := []Candidate{
		node("node-a", 4, 8192, 3, 1024, 0.2, 512),  // 1 CPU left → 0.5/4 after
		node("node-b", 8, 8192, 2, 2048, 0.5, 1024), // 6 CPU, 6144 MB left
		node("node-c", 8, 4096, 0, 0, 0.1, 3584),    // OS uses almost all memory → does not fit 1024
	}
	got, err := Choose("qa", nodes, Selector{}, Request{CPU: 0.5, MemoryMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "node-b" {
		t.Fatalf("chose %s, want node-b (most headroom)", got.Name)
	}
}

func TestChooseRespectsOSUsage(t *testing.T) {
	// Nothing allocated, but other processes use 3.5 of 4 CPUs, and the
	// environment allows no overcommit.
	nodes := []Candidate{node("busy", 4, 8192, 0, 0, 3.5, 1000)}
	_, err := Choose("qa", nodes, Selector{}, Request{CPU: 1, MemoryMB: 256})
	var nf *NoFitError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNoFit) {
		t.Fatalf("err = %v, want NoFitError", err)
	}
	if want := "no node in environment qa has 1.0 CPU free (best: busy with 0.5 of 4 free)"; nf.Message != want {
		t.Fatalf("message %q, want %q", nf.Message, want)
	}
}

func TestChooseExactFitAndMessages(t *testing.T) {
	exact := []Candidate{node("n1", 2, 1024, 1.5, 512, 0, 0)}
	if _, err := Choose("qa", exact, Selector{}, Request{CPU: 0.5, MemoryMB: 512}); err != nil {
		t.Fatalf("exact fit refused: %v", err)
	}
	// float sums like 0.1+0.2 must not refuse an exact fit
	if _, err := Choose("qa", []Candidate{node("n1", 0.3, 100, 0.1+0.2-0.1, 0, 0, 0)}, Selector{}, Request{CPU: 0.1, MemoryMB: 1}); err != nil {
		t.Fatalf("rounding refused an exact fit: %v", err)
	}

	cases := []struct {
		name   string
		nodes  []Candidate
		sel    string
		req    Request
		want   string
		public string // the same without node names or free figures
	}{
		{"cpu short", []Candidate{node("node-1", 4, 8192, 2.5, 0, 0, 0), node("node-2", 2, 8192, 1, 0, 0, 0)},
			"", Request{CPU: 2, MemoryMB: 100},
			"no node in environment qa has 2.0 CPUs free (best: node-1 with 1.5 of 4 free)",
			"no node in environment qa has 2.0 CPUs free"},
		{"memory short", []Candidate{node("node-1", 4, 2048, 0, 1536, 0, 0)},
			"", Request{CPU: 1, MemoryMB: 1024},
			"no node in environment qa has 1024 MB of memory free (best: node-1 with 512 of 2048 MB free)",
			"no node in environment qa has 1024 MB of memory free"},
		{"both short", []Candidate{node("node-1", 1, 1024, 1, 1024, 0, 0)},
			"", Request{CPU: 1, MemoryMB: 512},
			"no node in environment qa has 1.0 CPU free (best: node-1 with 0 of 1 free), and none has 512 MB of memory free (best: node-1 with 0 of 1024 MB free)",
			"no node in environment qa has 1.0 CPU and 512 MB of memory free"},
		{"never both on one node", []Candidate{node("a", 4, 1024, 0, 1000, 0, 0), node("b", 4, 4096, 3.5, 0, 0, 0)},
			"", Request{CPU: 1, MemoryMB: 512},
			"no node in environment qa has both 1.0 CPU and 512 MB of memory free (a has 4 of 4 CPUs and 24 of 1024 MB free; b has 0.5 of 4 CPUs and 4096 of 4096 MB free)",
			"no node in environment qa has both 1.0 CPU and 512 MB of memory free"},
		{"fractional request", []Candidate{node("node-1", 2, 8192, 1.9, 0, 0, 0)},
			"", Request{CPU: 0.25, MemoryMB: 100},
			"no node in environment qa has 0.25 CPUs free (best: node-1 with 0.1 of 2 free)",
			"no node in environment qa has 0.25 CPUs free"},
		{"no nodes", nil, "", Request{CPU: 1, MemoryMB: 1},
			"no node in environment qa is online, enabled and trusted",
			"no node in environment qa is online, enabled and trusted"},
		{"selector matches none", []Candidate{{Name: "x", CapCPU: 8, CapMemMB: 8192, Labels: map[string]string{"zone": "us"}}},
			`{"match_labels":{"zone":"eu"}}`, Request{CPU: 1, MemoryMB: 1},
			"none of the 1 available nodes in environment qa matches the project's node selector zone=eu",
			"no available node in environment qa matches the project's node selector"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := ParseSelector([]byte(tc.sel))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Choose("qa", tc.nodes, sel, tc.req)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
			var nf *NoFitError
			if !errors.As(err, &nf) || nf.Public != tc.public {
				t.Fatalf("public reason %q, want %q", nf.Public, tc.public)
			}
			for _, n := range tc.nodes {
				if len(n.Name) > 2 && strings.Contains(nf.Public, n.Name) {
					t.Errorf("public reason %q names node %s", nf.Public, n.Name)
				}
			}
		})
	}
}

func TestChooseOnlyMatchingNodes(t *testing.T) {
	nodes := []Candidate{
		{Name: "big-us", CapCPU: 32, CapMemMB: 65536, Labels: map[string]string{"zone": "us"}},
		{Name: "small-eu", CapCPU: 2, CapMemMB: 2048, Labels: map[string]string{"zone": "eu", "ssd": "1"}},
	}
	sel, err := ParseSelector([]byte(`{"expressions":[{"key":"zone","operator":"NotIn","values":["us"]},{"key":"ssd","operator":"Exists"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Choose("qa", nodes, sel, Request{CPU: 1, MemoryMB: 512})
	if err != nil || got.Name != "small-eu" {
		t.Fatalf("got %v %v, want small-eu", got.Name, err)
	}
	// The selected node is full: the message is about resources on the matching node only.
	_, err = Choose("qa", nodes, sel, Request{CPU: 4, MemoryMB: 512})
	if err == nil || err.Error() != "no node in environment qa has 4.0 CPUs free (best: small-eu with 2 of 2 free)" {
		t.Fatalf("got %v", err)
	}
}

func TestBusyCPUDoesNotRefuseWithinOvercommit(t *testing.T) {
	// Other processes keep all 4 CPUs busy; the environment allows 1.5×.
	busy := Candidate{Name: "busy", CapCPU: 4, CapMemMB: 8192, OtherCPU: 4, UsedMemMB: 1000, Overcommit: 1.5}
	if _, err := Choose("qa", []Candidate{busy}, Selector{}, Request{CPU: 2, MemoryMB: 256}); err != nil {
		t.Fatalf("busy CPU refused a deployment within the overcommit: %v", err)
	}
	// Reservations plus other use may not pass 1.5 × 4 = 6 CPUs.
	busy.AllocCPU = 1.5
	_, err := Choose("qa", []Candidate{busy}, Selector{}, Request{CPU: 1, MemoryMB: 256})
	if err == nil || err.Error() != "no node in environment qa has 1.0 CPU free (best: busy with 0.5 of 4 free)" {
		t.Fatalf("got %v", err)
	}
	// Reservations alone count strictly, whatever the overcommit.
	idle := Candidate{Name: "idle", CapCPU: 4, CapMemMB: 8192, AllocCPU: 3.5, Overcommit: 10}
	if _, err := Choose("qa", []Candidate{idle}, Selector{}, Request{CPU: 1, MemoryMB: 256}); err == nil {
		t.Fatal("reservations beyond the node's CPUs accepted")
	}
	// Memory stays strict: OS-used memory refuses what does not fit.
	full := Candidate{Name: "full", CapCPU: 4, CapMemMB: 2048, UsedMemMB: 1900, Overcommit: 10}
	if _, err := Choose("qa", []Candidate{full}, Selector{}, Request{CPU: 0.1, MemoryMB: 256}); err == nil {
		t.Fatal("memory in use by the OS was overcommitted")
	}
	// The least busy node wins.
	calm := Candidate{Name: "calm", CapCPU: 4, CapMemMB: 8192, OtherCPU: 1, Overcommit: 1.5}
	got, err := Choose("qa", []Candidate{{Name: "busy", CapCPU: 4, CapMemMB: 8192, OtherCPU: 4, Overcommit: 1.5}, calm}, Selector{}, Request{CPU: 1, MemoryMB: 256})
	if err != nil || got.Name != "calm" {
		t.Fatalf("chose %v %v, want calm", got.Name, err)
	}
}
