package pipeline

import (
	"math"
	"testing"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
)

func TestSharesSplitTheBudget(t *testing.T) {
	plugin := func(name string) protocol.Resources {
		if name != "mkdb" {
			t.Fatalf("asked for plugin %q", name)
		}
		return protocol.Resources{CPU: 0.1, MemoryMB: 32}
	}
	g := protocol.Graph{Nodes: []protocol.Node{
		{ID: "db", Kind: protocol.KindService, Service: "postgres", Resources: &protocol.Resources{MemoryMB: 256}},
		{ID: "mkdb", Kind: protocol.KindComponent, Plugin: "mkdb"},
		{ID: "api", Kind: protocol.KindService, Service: "api"},
		{ID: "web", Kind: protocol.KindService, Service: "web", Resources: &protocol.Resources{CPU: 0.5}},
	}}
	got, err := Shares(g, protocol.Resources{CPU: 1, MemoryMB: 512}, plugin)
	if err != nil {
		t.Fatal(err)
	}
	// CPU: web 0.5 and mkdb 0.1 fixed; db and api split 0.4.
	// Memory: db 256 and mkdb 32 fixed; api and web split 224.
	want := map[string]protocol.Resources{
		"db": {CPU: 0.2, MemoryMB: 256}, "mkdb": {CPU: 0.1, MemoryMB: 32},
		"api": {CPU: 0.2, MemoryMB: 112}, "web": {CPU: 0.5, MemoryMB: 112},
	}
	for id, w := range want {
		g := got[id]
		if math.Abs(g.CPU-w.CPU) > 1e-9 || g.MemoryMB != w.MemoryMB {
			t.Errorf("%s: %+v, want %+v", id, g, w)
		}
	}

	// Explicit shares over the budget are refused, naming the sums.
	g.Nodes[0].Resources = &protocol.Resources{CPU: 0.6, MemoryMB: 600}
	_, err = Shares(g, protocol.Resources{CPU: 1, MemoryMB: 512}, plugin)
	p := errs.FieldsOf(err)
	if p == nil ||
		p["resources.cpu"] != "the nodes' CPU shares (explicit and plugin limits) add up to 1.2, more than the deployment's 1 CPUs" ||
		p["resources.memory_mb"] != "the nodes' memory shares (explicit and plugin limits) add up to 632 MB, more than the deployment's 512 MB" {
		t.Fatalf("over budget: %v", err)
	}

	// Too little left for the services without a share.
	g.Nodes[0].Resources = &protocol.Resources{CPU: 0.395, MemoryMB: 470}
	_, err = Shares(g, protocol.Resources{CPU: 1, MemoryMB: 512}, plugin)
	if p = errs.FieldsOf(err); p == nil ||
		p["resources.cpu"] != "0.005 CPUs are left for 1 services without a cpu share: less than 0.01 each; raise the budget or give them explicit shares" ||
		p["resources.memory_mb"] != "10 MB are left for 2 services without a memory share: less than 16 MB each; raise the budget or give them explicit shares" {
		t.Fatalf("too little left: %v", err)
	}
}
