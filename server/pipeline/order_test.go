package pipeline

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/nullops/nullops/protocol"
)

// TestDryRunOrderIsTheGraphOrder: the order validation returns (the dry run
// and the save show it) is protocol.Graph.Order, the order the agent runs
// (agent/executor TestSchedulerRunsTheDryRunOrder), for many random graphs.
func TestDryRunOrderIsTheGraphOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lk := testLookup(t)
	for round := range 300 {
		n := 1 + rng.IntN(10)
		g := protocol.Graph{}
		for i := range n {
			g.Nodes = append(g.Nodes, protocol.Node{ID: fmt.Sprint("n", i), Kind: protocol.KindComponent, Plugin: "noop"})
		}
		perm := rng.Perm(n)
		for k := 0; k < rng.IntN(2*n+1); k++ {
			a, b := rng.IntN(n), rng.IntN(n)
			if a == b {
				continue
			}
			if perm[a] > perm[b] {
				a, b = b, a
			}
			g.Edges = append(g.Edges, [2]string{g.Nodes[a].ID, g.Nodes[b].ID})
		}
		got, err := Validate(g, lk)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		want, err := g.Order()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: validation order %v, graph order %v (%v)", round, got, want, err)
		}
	}
}

// TestLayoutIsNotPartOfTheGraph: the editor's node positions are kept with
// the stored pipeline and never reach the graph an agent runs.
func TestLayoutIsNotPartOfTheGraph(t *testing.T) {
	raw := `{"nodes":[{"id":"a","kind":"component","plugin":"noop","position":{"x":10,"y":20.5}},` +
		`{"id":"b","kind":"component","plugin":"noop"}],"edges":[["a","b"]]}`
	g, layout, order, err := CheckDocument([]byte(raw), testLookup(t))
	if err != nil || !reflect.DeepEqual(order, []string{"a", "b"}) {
		t.Fatalf("check: %v %v", order, err)
	}
	if !reflect.DeepEqual(layout, Layout{"a": {X: 10, Y: 20.5}}) {
		t.Fatalf("layout %v", layout)
	}
	spec, _ := json.Marshal(protocol.DeploySpec{Graph: g})
	if strings.Contains(string(spec), "position") {
		t.Fatalf("the position reaches the agent: %s", spec)
	}
	stored, err := Encode(g, layout)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored) != `{"nodes":[{"id":"a","kind":"component","plugin":"noop","position":{"x":10,"y":20.5}},{"id":"b","kind":"component","plugin":"noop"}],"edges":[["a","b"]]}` {
		t.Fatalf("stored form %s", stored)
	}
	if _, err := Decode([]byte(`{"nodes":[{"id":"a","kind":"component","plugin":"noop","position":{"z":1}}],"edges":[]}`)); err == nil {
		t.Fatal("an unknown field of a position was accepted")
	}
}
