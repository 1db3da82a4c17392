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
