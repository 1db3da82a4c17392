package dynconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// randomConfig makes a configuration from a small name and host space, so
// that successive ones share, change and drop entries, and sometimes have
// two routers on one host, broken rules or missing services.
func randomConfig(rng *rand.Rand, n int) *Configuration {
	b := NewBuilder(nil, nil)
	cfg := b.Configuration()
	for range n {
		id := rng.IntN(3 * n / 2)
		name := RouterName(int64(id+1), "web")
		host := fmt.Sprintf("web.d%d.qa.example.test", id+1)
		if rng.IntN(20) == 0 {
			host = fmt.Sprintf("web.d%d.qa.example.test", rng.IntN(n)+1) // may collide
		}
		switch rng.IntN(12) {
		case 0:
			b.Unavailable(name, host, ServiceDeploying)
		case 1:
			b.Unavailable(name, host, ServiceOffline)
		case 2:
			cfg.HTTP.Routers[name] = &Router{Service: "shared", Rule: HostRule(host)}
		case 3:
			cfg.HTTP.Routers[name] = &Router{Service: name, Rule: "Path(`/x`)"}
		case 4:
			cfg.HTTP.Routers[name] = &Router{Service: "missing", Rule: HostRule(host, "alt."+host)}
		default:
			b.Backend(name, host, fmt.Sprintf("http://10.0.0.%d:%d", rng.IntN(3)+1, 30000+rng.IntN(4)))
		}
	}
	if rng.IntN(2) == 0 {
		t := true
		cfg.HTTP.Services["shared"] = &Service{LoadBalancer: &ServersLoadBalancer{
			Servers: []Server{{URL: fmt.Sprintf("http://10.0.1.1:%d", 31000+rng.IntN(3))}}, PassHostHeader: &t}}
	}
	return cfg
}

// encodeDecode sends a delta over the wire.
func encodeDecode(t testing.TB, d *Delta) *Delta {
	t.Helper()
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDelta(data)
	if err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return got
}

func problemStrings(ps []Problem) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Error())
	}
	slices.Sort(out)
	return out
}

// sameRoutes fails unless incremental routes equal a full compilation.
func sameRoutes(t testing.TB, c *Compiled, cfg *Configuration) {
	t.Helper()
	want, _ := Compile(cfg)
	got := c.Routes()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("incremental routes differ from a full compilation:\n got %d routes %v\nwant %d routes %v", len(got), got, len(want), want)
	}
}

func TestDeltaSequenceMatchesWholeDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	prev := randomConfig(rng, 40)
	server := NewState(clone(prev))
	ingress, _ := NewCompiled(NewState(clone(prev)))
	for i := range 300 {
		next := randomConfig(rng, 40)
		if i%3 == 0 { // small changes, as in production
			next = clone(prev)
			for range rng.IntN(3) + 1 {
				id := rng.IntN(60) + 1
				name := RouterName(int64(id), "web")
				if rng.IntN(3) == 0 {
					delete(next.HTTP.Routers, name)
					delete(next.HTTP.Services, name)
					continue
				}
				b := &Builder{cfg: next}
				b.Backend(name, fmt.Sprintf("web.d%d.qa.example.test", id), fmt.Sprintf("http://10.0.0.9:%d", 40000+rng.IntN(5)))
			}
		}
		d := server.Diff(next)
		if err := server.Apply(d); err != nil {
			t.Fatalf("step %d: server applies its own diff: %v", i, err)
		}
		if want := ConfigETag(next); server.ETag() != want || d.To != want {
			t.Fatalf("step %d: etag %s, delta to %s, whole document %s", i, server.ETag(), d.To, want)
		}
		u, err := ingress.Apply(encodeDecode(t, d))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if ingress.State().ETag() != server.ETag() {
			t.Fatalf("step %d: ingress at %s, server at %s", i, ingress.State().ETag(), server.ETag())
		}
		if !reflect.DeepEqual(ingress.State().Config(), server.Config()) {
			t.Fatalf("step %d: configurations differ", i)
		}
		sameRoutes(t, ingress, next)
		if !u.Full {
			// Only touched routers are reported.
			for _, p := range u.Problems {
				if _, set := d.Routers[p.Router]; !set && !usesChanged(next, p.Router, d) {
					t.Fatalf("step %d: problem of an untouched router %s", i, p)
				}
			}
		}
		prev = next
	}
}

func usesChanged(cfg *Configuration, router string, d *Delta) bool {
	r := cfg.HTTP.Routers[router]
	if r == nil {
		return false
	}
	_, set := d.Services[r.Service]
	return set || slices.Contains(d.RemoveServices, r.Service)
}

func clone(cfg *Configuration) *Configuration {
	data, err := json.Marshal(cfg)
	if err != nil {
		panic(err)
	}
	out, err := Decode(data)
	if err != nil {
		panic(err)
	}
	return out
}

func TestDeltaOfOneChangeIsSmall(t *testing.T) {
	cfg := bigConfig(10000)
	st := NewState(clone(cfg))
	next := clone(cfg)
	b := &Builder{cfg: next}
	b.Backend(RouterName(1, "web"), "web.deployment-1.qa.example.com", "http://10.9.9.9:31000")
	d := st.Diff(next)
	data, _ := json.Marshal(d)
	whole, _ := json.Marshal(next)
	if d.Changes() != 2 || len(data) > 600 {
		t.Fatalf("one route becoming routed: %d changes, %d bytes: %s", d.Changes(), len(data), data)
	}
	t.Logf("delta %d bytes, whole document %d bytes", len(data), len(whole))
}

func TestMergedDeltasEqualOneDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := randomConfig(rng, 30)
	st := NewState(clone(base))
	var steps []*Delta
	var last *Configuration
	for range 8 {
		last = randomConfig(rng, 30)
		d := st.Diff(last)
		if err := st.Apply(d); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, d)
	}
	m, err := Merge(steps)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewCompiled(NewState(clone(base)))
	if _, err := c.Apply(encodeDecode(t, m)); err != nil {
		t.Fatal(err)
	}
	if c.State().ETag() != ConfigETag(last) {
		t.Fatal("merged delta does not reach the last table")
	}
	sameRoutes(t, c, last)
	if _, err := Merge([]*Delta{steps[0], steps[2]}); err == nil {
		t.Fatal("merge accepted a gap")
	}
}

func TestDeltaRefusedChangesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	a, b := randomConfig(rng, 20), randomConfig(rng, 20)
	d := NewState(clone(a)).Diff(b)

	other := randomConfig(rng, 20)
	c, _ := NewCompiled(NewState(clone(other)))
	if _, err := c.Apply(d); !errors.Is(err, ErrDeltaBase) {
		t.Fatalf("delta for another table: %v", err)
	}
	if c.State().ETag() != ConfigETag(other) {
		t.Fatal("a delta for another table changed the table")
	}
	c, _ = NewCompiled(NewState(clone(a)))
	bad := *d
	bad.To = Hash{1, 2}.ETag()
	if _, err := c.Apply(&bad); !errors.Is(err, ErrDeltaResult) {
		t.Fatalf("delta with a wrong result: %v", err)
	}
	if c.State().ETag() != ConfigETag(a) {
		t.Fatal("a refused delta changed the table")
	}
	if !reflect.DeepEqual(c.State().Config(), clone(a)) {
		t.Fatal("a refused delta changed the configuration")
	}
	sameRoutes(t, c, a)
}

func TestDecodeDeltaRefusesMalformed(t *testing.T) {
	e := `"\"` + strings.Repeat("0", 32) + `\""`
	for _, doc := range []string{
		``,
		`{}`,
		`{"from":"x","to":"y"}`,
		`{"from":` + e + `,"to":` + e + `,"routers":{"a":null}}`,
		`{"from":` + e + `,"to":` + e + `,"routers":{"":{"rule":"Host(` + "`a`" + `)"}}}`,
		`{"from":` + e + `,"to":` + e + `,"routers":{"a":{"service":"s"}},"removeRouters":["a"]}`,
		`{"from":` + e + `,"to":` + e + `,"removeServices":["a","a"]}`,
		`{"from":` + e + `,"to":` + e + `,"extra":1}`,
		`{"from":` + e + `,"to":` + e + `,"routers":{"a":{"service":"s","bogus":1}}}`,
		`{"from":` + e + `,"to":` + e + `,"routers":{"a":{"service":"s"},"a":{"service":"t"}}}`,
		`{"from":` + e + `,"to":` + e + `,"fromVersion":-1}`,
	} {
		if _, err := DecodeDelta([]byte(doc)); err == nil {
			t.Errorf("accepted %s", doc)
		}
	}
	if _, err := DecodeDelta([]byte(`{"from":` + e + `,"to":` + e + `}`)); err != nil {
		t.Fatalf("empty delta refused: %v", err)
	}
}

// TestEntryHashCoversEveryField changes every field of the entry types
// once: each must change the entry's hash. A new field fails here until the
// hasher encodes it.
func TestEntryHashCoversEveryField(t *testing.T) {
	known := map[reflect.Type][]string{
		reflect.TypeFor[Router]():              {"EntryPoints", "Middlewares", "Service", "Rule", "Priority", "TLS"},
		reflect.TypeFor[RouterTLSConfig]():     {"Options", "CertResolver"},
		reflect.TypeFor[Service]():             {"LoadBalancer"},
		reflect.TypeFor[ServersLoadBalancer](): {"Servers", "PassHostHeader", "ResponseForwarding"},
		reflect.TypeFor[ResponseForwarding]():  {"FlushInterval"},
		reflect.TypeFor[Server]():              {"URL"},
	}
	for typ, fields := range known {
		var got []string
		for i := range typ.NumField() {
			got = append(got, typ.Field(i).Name)
		}
		if !slices.Equal(got, fields) {
			t.Errorf("%s has fields %v; the hasher encodes %v: update hasher and this test", typ, got, fields)
		}
	}
	var h hasher
	f := false
	base := &Router{EntryPoints: []string{"a"}, Middlewares: []string{"m"}, Service: "s", Rule: "r", Priority: 1, TLS: &RouterTLSConfig{Options: "o", CertResolver: "c"}}
	routers := []*Router{
		{Middlewares: base.Middlewares, Service: "s", Rule: "r", Priority: 1, TLS: base.TLS},
		{EntryPoints: base.EntryPoints, Service: "s", Rule: "r", Priority: 1, TLS: base.TLS},
		{EntryPoints: base.EntryPoints, Middlewares: base.Middlewares, Rule: "r", Priority: 1, TLS: base.TLS},
		{EntryPoints: base.EntryPoints, Middlewares: base.Middlewares, Service: "s", Priority: 1, TLS: base.TLS},
		{EntryPoints: base.EntryPoints, Middlewares: base.Middlewares, Service: "s", Rule: "r", TLS: base.TLS},
		{EntryPoints: base.EntryPoints, Middlewares: base.Middlewares, Service: "s", Rule: "r", Priority: 1},
		{EntryPoints: base.EntryPoints, Middlewares: base.Middlewares, Service: "s", Rule: "r", Priority: 1, TLS: &RouterTLSConfig{CertResolver: "c"}},
		{EntryPoints: base.EntryPoints, Middlewares: base.Middlewares, Service: "s", Rule: "r", Priority: 1, TLS: &RouterTLSConfig{Options: "o"}},
		{EntryPoints: []string{"a", ""}, Middlewares: base.Middlewares, Service: "s", Rule: "r", Priority: 1, TLS: base.TLS},
	}
	want := h.router("x", base)
	if h.router("y", base) == want {
		t.Error("router name not hashed")
	}
	for i, r := range routers {
		if h.router("x", r) == want || routerEqual(r, base) {
			t.Errorf("router variant %d: same hash or equal", i)
		}
	}
	tr := true
	sbase := &Service{LoadBalancer: &ServersLoadBalancer{Servers: []Server{{URL: "u"}}, PassHostHeader: &tr, ResponseForwarding: &ResponseForwarding{FlushInterval: "1s"}}}
	services := []*Service{
		{},
		{LoadBalancer: &ServersLoadBalancer{PassHostHeader: &tr, ResponseForwarding: sbase.LoadBalancer.ResponseForwarding}},
		{LoadBalancer: &ServersLoadBalancer{Servers: []Server{{URL: "v"}}, PassHostHeader: &tr, ResponseForwarding: sbase.LoadBalancer.ResponseForwarding}},
		{LoadBalancer: &ServersLoadBalancer{Servers: []Server{{URL: "u"}}, ResponseForwarding: sbase.LoadBalancer.ResponseForwarding}},
		{LoadBalancer: &ServersLoadBalancer{Servers: []Server{{URL: "u"}}, PassHostHeader: &f, ResponseForwarding: sbase.LoadBalancer.ResponseForwarding}},
		{LoadBalancer: &ServersLoadBalancer{Servers: []Server{{URL: "u"}}, PassHostHeader: &tr}},
		{LoadBalancer: &ServersLoadBalancer{Servers: []Server{{URL: "u"}}, PassHostHeader: &tr, ResponseForwarding: &ResponseForwarding{}}},
	}
	swant := h.service("x", sbase)
	for i, s := range services {
		if h.service("x", s) == swant || serviceEqual(s, sbase) {
			t.Errorf("service variant %d: same hash or equal", i)
		}
	}
}

// FuzzDecodeDelta feeds arbitrary bytes to the decoder and applies what it
// accepts to a compiled table: nothing may panic, a refused delta changes
// nothing, and an accepted one leaves routes equal to a full compilation.
func FuzzDecodeDelta(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	base := randomConfig(rng, 12)
	st := NewState(clone(base))
	for range 4 {
		d := st.Diff(randomConfig(rng, 12))
		data, _ := json.Marshal(d)
		f.Add(data)
	}
	from := ConfigETag(base)
	q, _ := json.Marshal(from)
	f.Add([]byte(`{"from":` + string(q) + `,"to":` + string(q) + `}`))
	f.Add([]byte(`{"from":` + string(q) + `,"to":` + string(q) + `,"routers":{"d1-web":{"rule":"Host(` + "`a`" + `)","service":"nullops-offline"}}}`))
	f.Add([]byte(`{"from":` + string(q) + `,"to":"x","removeRouters":["d1-web"],"removeServices":["nullops-offline"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDelta(data)
		if err != nil {
			return
		}
		c, _ := NewCompiled(NewState(clone(base)))
		if _, err := c.Apply(d); err != nil {
			if c.State().ETag() != from {
				t.Fatal("a refused delta changed the table")
			}
			sameRoutes(t, c, base)
			if d.From != from {
				return
			}
			// Same content with the result it really produces: exercises
			// the incremental compilation on arbitrary changes.
			sum, _, _ := NewState(clone(base)).result(d)
			d.To = sum.ETag()
			if _, err := c.Apply(d); err != nil {
				t.Fatalf("delta with its computed result refused: %v", err)
			}
		}
		if c.State().ETag() != d.To {
			t.Fatal("accepted delta did not reach its To")
		}
		sameRoutes(t, c, c.State().Config())
	})
}
