package executor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/nullops/nullops/protocol"
)

func TestTemplates(t *testing.T) {
	sc := scope{
		secrets: map[string]string{"pw": "s3cr3t!"},
		outputs: map[string]map[string]string{"mk": {"url": "pg://x"}, "other": {"k": "v"}},
		visible: map[string]bool{"mk": true},
	}
	got, err := sc.expand("u=${steps.mk.outputs.url} p=${secrets.pw} keep=${HOME} $x")
	if err != nil || got != "u=pg://x p=s3cr3t! keep=${HOME} $x" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"${secrets.nope}", "${steps.other.outputs.k}", "${steps.mk.outputs.nope}", "${steps.mk}"} {
		if _, err := sc.expand(bad); err == nil {
			t.Errorf("%s expanded without error", bad)
		}
	}
	v, err := sc.expandAny(map[string]any{"a": []any{"${secrets.pw}", 3.0}, "b": true})
	if err != nil || v.(map[string]any)["a"].([]any)[0] != "s3cr3t!" {
		t.Fatalf("expandAny: %v %v", v, err)
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor(map[string]string{"a": "abcdef", "b": "abcdefgh", "short": "xy"})
	if got := r.mask("x abcdefgh y abcdef xy"); got != "x *** y *** xy" {
		t.Fatalf("mask: %q", got)
	}
	if got := r.placeholder("p=abcdefgh"); got != "p=${secrets.b}" {
		t.Fatalf("placeholder: %q", got)
	}
}

// TestSchedulerRunsTheDryRunOrder: run one node at a time, the agent runs
// a graph exactly in its execution order (protocol.Graph.Order, which the
// server's dry run shows; server/pipeline tests that Validate returns it),
// for many random graphs; a node never starts before its predecessors.
func TestSchedulerRunsTheDryRunOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		n := 1 + rng.IntN(12)
		g := protocol.Graph{}
		for i := range n {
			g.Nodes = append(g.Nodes, protocol.Node{ID: fmt.Sprint("n", i)})
		}
		perm := rng.Perm(n) // edges go forward in a random permutation: acyclic
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
		want, err := g.Order()
		if err != nil {
			t.Fatal(err)
		}
		s, err := newScheduler(g)
		if err != nil {
			t.Fatal(err)
		}
		var ran []string
		var waiting []string
		for {
			waiting = append(waiting, s.take()...)
			if len(waiting) == 0 {
				break
			}
			slices.SortFunc(waiting, func(a, b string) int { return s.rank[a] - s.rank[b] })
			id := waiting[0]
			waiting = waiting[1:]
			ran = append(ran, id)
			s.done(id)
		}
		if !slices.Equal(ran, want) {
			t.Fatalf("round %d: graph %+v: the agent ran %v, the dry-run order is %v", round, g, ran, want)
		}
	}
	// Independent nodes: the list order decides, whatever finishes first.
	g := protocol.Graph{Nodes: []protocol.Node{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}}, Edges: [][2]string{{"a", "d"}, {"b", "c"}}}
	if o, _ := g.Order(); strings.Join(o, ",") != "a,b,c,d" {
		t.Fatalf("order %v, want a,b,c,d", o)
	}
	g.Edges = append(g.Edges, [2]string{"c", "b"})
	if _, err := newScheduler(g); err == nil || !strings.Contains(err.Error(), "cycle: b → c → b") {
		t.Fatalf("cycle: %v", err)
	}
}

func TestStepLogChunksCapsAndMasks(t *testing.T) {
	var chunks []string
	l := newStepLog(100, newRedactor(map[string]string{"s": "hunter22"}), func(c string) { chunks = append(chunks, c) })
	l.Write([]byte("password hunter"))
	l.Write([]byte("22 ok\n"))
	l.Write([]byte(strings.Repeat("x", 200) + "\nlast line"))
	l.Close()
	all := strings.Join(chunks, "")
	if !strings.HasPrefix(all, "password *** ok\n") || strings.Contains(all, "hunter22") {
		t.Fatalf("chunks %q", chunks)
	}
	if !strings.Contains(all, "[log truncated") {
		t.Fatalf("cap not applied: %q", all)
	}
	if !strings.HasSuffix(l.Tail(), "last line") {
		t.Fatalf("tail %q", l.Tail())
	}
}

func FuzzParseOutput(f *testing.F) {
	for _, s := range []string{
		`{"outputs":{"url":"pg://x","n":3,"o":{"a":1}},"message":"ok"}`,
		`{"outputs":{}}`, `{}`, `null`, `[]`, `not json`, ``, `{"outputs":{"a":"b"}}{"x":1}`,
		`{"outputs":"str"}`, "\n  {\"outputs\":{\"a\":\"\\u00e9\"}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, msg, err := parseOutput(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid JSON on stdout") {
				t.Fatalf("error without the contract prefix: %v", err)
			}
			if out != nil || msg != "" {
				t.Fatal("outputs returned with an error")
			}
			return
		}
		if out == nil {
			t.Fatal("nil outputs without error")
		}
		again, msg2, err := parseOutput(b)
		if err != nil || len(again) != len(out) || msg2 != msg {
			t.Fatal("parseOutput is not deterministic")
		}
	})
}
