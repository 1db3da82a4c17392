package proxy

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/dynconfig"
)

func roundTrip[T any](t *testing.T, v T, decode func([]byte) (T, error)) T {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decode(data)
	if err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return out
}

// describe renders a table as host → what serves it, comparable between a
// table patched by deltas and one built from the whole document.
func describe(t *Table) map[string]string {
	out := make(map[string]string, len(t.hosts))
	for h, r := range t.hosts {
		key := ""
		if r.backend != nil {
			for k, b := range t.backends {
				if b == r.backend {
					key = k
				}
			}
			if key == "" {
				key = "backend missing from the table's backends"
			}
		}
		out[h] = fmt.Sprintf("%s %s d%d %s act=%v", r.kind, r.router, r.deploymentID, key, r.activity != nil)
	}
	return out
}

// TestDeltasBuildTheSameTableAsWholeDocuments applies a long random
// sequence of changes as deltas to one proxy and as whole documents to
// another: hosts, kinds, backends and counts must be the same after every
// step, unchanged backends must be reused, and unused ones dropped.
func TestDeltasBuildTheSameTableAsWholeDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	mk := func() *dynconfig.Configuration {
		b := dynconfig.NewBuilder(nil, nil)
		for i := range 60 {
			if rng.IntN(4) == 0 {
				continue
			}
			name := dynconfig.RouterName(int64(i+1), "web")
			host := fmt.Sprintf("web.d%d.qa.example.test", i+1)
			switch rng.IntN(5) {
			case 0:
				b.Unavailable(name, host, dynconfig.ServiceDeploying)
			case 1:
				b.Unavailable(name, host, dynconfig.ServiceOffline)
			default:
				if rng.IntN(40) == 0 {
					host = fmt.Sprintf("web.d%d.qa.example.test", rng.IntN(60)+1) // may collide
				}
				b.Backend(name, host, fmt.Sprintf("http://10.0.0.%d:%d", rng.IntN(2)+1, 30000+rng.IntN(3)))
			}
		}
		return b.Configuration()
	}
	inc := New(Options{Log: zerolog.Nop(), Incremental: true, Activity: activity.NewTracker()})
	whole := New(Options{Log: zerolog.Nop(), Activity: activity.NewTracker()})
	cfg := mk()
	server := dynconfig.NewState(roundTrip(t, cfg, dynconfig.Decode))
	inc.ApplyConfig(roundTrip(t, cfg, dynconfig.Decode), server.ETag())
	patched := 0
	for i := range 200 {
		next := mk()
		if i%2 == 0 { // mostly a few changes, as in production
			next = roundTrip(t, server.Config(), dynconfig.Decode)
			for range rng.IntN(3) + 1 {
				id := rng.IntN(60) + 1
				name := dynconfig.RouterName(int64(id), "web")
				delete(next.HTTP.Routers, name)
				delete(next.HTTP.Services, name)
				if rng.IntN(3) > 0 {
					r := mk().HTTP
					if rr := r.Routers[name]; rr != nil {
						next.HTTP.Routers[name] = rr
						if s := r.Services[name]; s != nil {
							next.HTTP.Services[name] = s
						}
					}
				}
			}
		}
		d := server.Diff(next)
		if err := server.Apply(d); err != nil {
			t.Fatal(err)
		}
		before := inc.Current()
		if _, err := inc.ApplyDelta(roundTrip(t, d, dynconfig.DecodeDelta)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if _, err := whole.Apply(mustJSON(t, next), d.To); err != nil {
			t.Fatal(err)
		}
		got, want := inc.Current(), whole.Current()
		if !maps.Equal(describe(got), describe(want)) || got.counts != want.counts {
			t.Fatalf("step %d: delta table\n%v\nwhole-document table\n%v", i, describe(got), describe(want))
		}
		if !slices.Equal(slices.Sorted(maps.Keys(got.backends)), slices.Sorted(maps.Keys(want.backends))) {
			t.Fatalf("step %d: backends %v, want %v", i, slices.Sorted(maps.Keys(got.backends)), slices.Sorted(maps.Keys(want.backends)))
		}
		for k, b := range got.backends {
			if old := before.backends[k]; old != nil && old != b {
				t.Fatalf("step %d: backend %s not reused", i, k)
			}
		}
		if got.Version != server.ETag() || inc.ETag() != server.ETag() {
			t.Fatalf("step %d: version %s / %s, want %s", i, got.Version, inc.ETag(), server.ETag())
		}
		for h, r := range got.hosts {
			if before.hosts[h] == r {
				patched++ // route shared with the previous table: patched, not rebuilt
				break
			}
		}
	}
	if patched < 50 {
		t.Fatalf("only %d of 200 steps patched the table; the rest were rebuilt", patched)
	}
	// A delta for another table is refused and changes nothing.
	stale := server.Diff(mk())
	stale.From = dynconfig.Hash{9, 9}.ETag()
	cur := inc.Current()
	if _, err := inc.ApplyDelta(stale); err == nil || inc.Current() != cur {
		t.Fatalf("stale delta: %v", err)
	}
	// Without a base, deltas are refused.
	if _, err := New(Options{Log: zerolog.Nop()}).ApplyDelta(stale); err != ErrNoBase {
		t.Fatalf("no base: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkApplyDocument10k and BenchmarkApplyDelta10k compare what
// nullops-ingress does with one changed route in a 10,000-route table: the
// whole document (decode, compile, build) or a delta (decode, verify,
// recompile the route, patch a copy of the table).
func BenchmarkApplyDocument10k(b *testing.B) {
	docs, _ := bench10k(b)
	p := New(Options{Log: zerolog.Nop()})
	b.SetBytes(int64(len(docs[0])))
	i := 0
	for b.Loop() {
		if _, err := p.Apply(docs[i%2], fmt.Sprint(i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkApplyDelta10k(b *testing.B) {
	docs, deltas := bench10k(b)
	p := New(Options{Log: zerolog.Nop(), Incremental: true})
	if _, err := p.Apply(docs[0], "v0"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(deltas[0])))
	i := 0
	for b.Loop() {
		d, err := dynconfig.DecodeDelta(deltas[i%2])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.ApplyDelta(d); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// bench10k returns two 10,000-route documents differing in one route, and
// the deltas from the first to the second and back.
func bench10k(b *testing.B) (docs, deltas [2][]byte) {
	mk := func(changed bool) *dynconfig.Configuration {
		bl := dynconfig.NewBuilder(nil, nil)
		for i := range 10000 {
			name := dynconfig.RouterName(int64(i+1), "web")
			host := fmt.Sprintf("web.deployment-%d.qa.example.com", i+1)
			if i == 0 && !changed {
				bl.Unavailable(name, host, dynconfig.ServiceDeploying)
				continue
			}
			bl.Backend(name, host, fmt.Sprintf("http://10.0.%d.%d:%d", i/250, i%250, 30000+i%20000))
		}
		return bl.Configuration()
	}
	a, c := mk(false), mk(true)
	st := dynconfig.NewState(mk(false))
	there := st.Diff(c)
	if err := st.Apply(there); err != nil {
		b.Fatal(err)
	}
	back := st.Diff(a)
	var err error
	for i, v := range []any{a, c} {
		if docs[i], err = json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
	for i, v := range []any{there, back} {
		if deltas[i], err = json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
	return docs, deltas
}
