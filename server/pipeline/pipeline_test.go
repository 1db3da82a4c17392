package pipeline

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
)

func testLookup(t testing.TB) Catalog {
	t.Helper()
	sch, err := CompileSchema([]byte(`{
		"type": "object",
		"required": ["host", "database"],
		"additionalProperties": false,
		"properties": {
			"host": {"type": "string"},
			"database": {"type": "string", "pattern": "^[a-z_]+$"},
			"port": {"type": "integer", "minimum": 1}
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	return Catalog{
		Services: map[string]ServiceInfo{
			"postgres":    {Ports: []int{5432}},
			"backend-api": {Ports: []int{8080}},
			"web":         {Ports: []int{80, 443}},
			"worker":      {},
		},
		Plugins: map[string]PluginInfo{
			"postgres-create-db": {Schema: sch},
			"noop":               {},
		},
		Secrets: map[string]bool{"db_password": true},
	}
}

// designExample is the graph of docs/architecture.md, "Pipeline graph".
const designExample = `{
  "resources": {"cpu": 2.0, "memory_mb": 2048},
  "nodes": [
    {"id": "db",  "kind": "service",   "service": "postgres", "env": {"POSTGRES_PASSWORD": "${secrets.db_password}"}},
    {"id": "mkdb", "kind": "component", "plugin": "postgres-create-db", "params": {"host": "db", "database": "app"}},
    {"id": "api", "kind": "service",   "service": "backend-api", "port": 8080, "ingress": true,
     "env": {"DATABASE_URL": "${steps.mkdb.outputs.url}"}, "health": {"http": "/healthz"}}
  ],
  "edges": [["db", "mkdb"], ["mkdb", "api"]]
}`

func TestValidDesignExample(t *testing.T) {
	_, order, err := Check([]byte(designExample), testLookup(t))
	if err != nil {
		t.Fatalf("valid graph refused: %v", err)
	}
	if want := []string{"db", "mkdb", "api"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

func TestOrderIsTopologicalAndStable(t *testing.T) {
	// c and b listed before a; a must come first, then b before c (listed
	// order among ready nodes is c, b? no: c depends on b).
	raw := `{"nodes":[
		{"id":"c","kind":"service","service":"worker"},
		{"id":"b","kind":"component","plugin":"noop"},
		{"id":"a","kind":"component","plugin":"noop"},
		{"id":"d","kind":"service","service":"worker"}],
	  "edges":[["a","b"],["b","c"],["a","c"]]}`
	_, order, err := Check([]byte(raw), testLookup(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

// TestRules has one case per validation rule: each graph breaks exactly one
// rule and must produce a problem at the named field whose message contains
// the given text.
func TestRules(t *testing.T) {
	svc := func(id, service string, extra string) string {
		return `{"id":"` + id + `","kind":"service","service":"` + service + `"` + extra + `}`
	}
	g := func(nodes []string, edges string) string {
		return `{"nodes":[` + strings.Join(nodes, ",") + `],"edges":[` + edges + `]}`
	}
	mkdb := `{"id":"mkdb","kind":"component","plugin":"postgres-create-db","params":{"host":"db","database":"app"}}`
	cases := []struct {
		name, graph, field, contains string
	}{
		{"no nodes", `{"nodes":[],"edges":[]}`, "nodes", "at least one node"},
		{"unknown field", `{"nodes":[{"id":"a","kind":"service","service":"worker","colour":"red"}]}`, "graph", "colour"},
		{"id missing", g([]string{`{"kind":"service","service":"worker"}`}, ""), "nodes[0].id", "required"},
		{"id not a DNS label", g([]string{svc("Bad_ID", "worker", "")}, ""), "nodes[0].id", "DNS label"},
		{"id too long", g([]string{svc(strings.Repeat("a", 64), "worker", "")}, ""), "nodes[0].id", "DNS label"},
		{"duplicate id", g([]string{svc("a", "worker", ""), svc("a", "postgres", "")}, ""), "nodes.a.id", "duplicate"},
		{"kind missing", g([]string{`{"id":"a","service":"worker"}`}, ""), "nodes.a.kind", "required"},
		{"kind unknown", g([]string{`{"id":"a","kind":"job"}`}, ""), "nodes.a.kind", "unknown kind"},
		{"service missing", g([]string{`{"id":"a","kind":"service"}`}, ""), "nodes.a.service", "names a catalog service"},
		{"service unknown", g([]string{svc("a", "redis", "")}, ""), "nodes.a.service", `unknown service "redis"`},
		{"plugin missing", g([]string{`{"id":"a","kind":"component"}`}, ""), "nodes.a.plugin", "names a catalog plugin"},
		{"plugin unknown", g([]string{`{"id":"a","kind":"component","plugin":"nope"}`}, ""), "nodes.a.plugin", `unknown plugin "nope"`},
		{"params missing required", g([]string{`{"id":"m","kind":"component","plugin":"postgres-create-db","params":{"host":"db"}}`}, ""), "nodes.m.params", "database"},
		{"params wrong type", g([]string{`{"id":"m","kind":"component","plugin":"postgres-create-db","params":{"host":5,"database":"app"}}`}, ""), "nodes.m.params.host", "string"},
		{"params pattern", g([]string{`{"id":"m","kind":"component","plugin":"postgres-create-db","params":{"host":"db","database":"App!"}}`}, ""), "nodes.m.params.database", "match"},
		{"params extra property", g([]string{`{"id":"m","kind":"component","plugin":"postgres-create-db","params":{"host":"db","database":"app","x":1}}`}, ""), "nodes.m.params", "x"},
		{"params on a service", g([]string{svc("a", "worker", `,"params":{"x":1}`)}, ""), "nodes.a.params", "only component"},
		{"env on a component", g([]string{`{"id":"a","kind":"component","plugin":"noop","env":{"A":"b"}}`}, ""), "nodes.a.env", "not env"},
		{"env name invalid", g([]string{svc("a", "worker", `,"env":{"1BAD":"x"}`)}, ""), "nodes.a.env", "not a valid variable name"},
		{"edge unknown node", g([]string{svc("a", "worker", "")}, `["a","b"]`), "edges[0]", `unknown node "b"`},
		{"edge self loop", g([]string{svc("a", "worker", "")}, `["a","a"]`), "edges[0]", "itself"},
		{"cycle", g([]string{svc("a", "worker", ""), svc("b", "worker", ""), svc("c", "worker", "")}, `["a","b"],["b","c"],["c","a"]`), "edges", "a → b → c → a"},
		{"step ref to unknown node", g([]string{svc("a", "worker", `,"env":{"X":"${steps.zz.outputs.url}"}`)}, ""), "nodes.a.env.X", `no node "zz"`},
		{"step ref not a predecessor", g([]string{mkdb, svc("db", "postgres", ""), svc("api", "backend-api", `,"env":{"DATABASE_URL":"${steps.mkdb.outputs.url}"}`)}, `["db","mkdb"]`), "nodes.api.env.DATABASE_URL", "does not run before"},
		{"step ref reversed edge", g([]string{mkdb, svc("db", "postgres", ""), svc("api", "backend-api", `,"env":{"DATABASE_URL":"${steps.mkdb.outputs.url}"}`)}, `["db","mkdb"],["api","mkdb"]`), "nodes.api.env.DATABASE_URL", "does not run before"},
		{"step ref to a service", g([]string{svc("db", "postgres", ""), svc("api", "backend-api", `,"env":{"U":"${steps.db.outputs.url}"}`)}, `["db","api"]`), "nodes.api.env.U", "only component steps have outputs"},
		{"step ref in params", g([]string{`{"id":"m","kind":"component","plugin":"postgres-create-db","params":{"host":"${steps.x.outputs.h}","database":"app"}}`, `{"id":"x","kind":"component","plugin":"noop"}`}, ""), "nodes.m.params.host", "does not run before"},
		{"secret unknown", g([]string{svc("a", "worker", `,"env":{"P":"${secrets.other}"}`)}, ""), "nodes.a.env.P", `no secret "other"`},
		{"malformed reference", g([]string{svc("a", "worker", `,"env":{"P":"${env.HOME}"}`)}, ""), "nodes.a.env.P", "unknown reference"},
		{"unterminated reference", g([]string{svc("a", "worker", `,"env":{"P":"x${secrets.db_password"}`)}, ""), "nodes.a.env.P", "unterminated"},
		{"ingress without port", g([]string{svc("w", "web", `,"ingress":true`)}, ""), "nodes.w.port", "needs a port"},
		{"ingress service without ports", g([]string{svc("w", "worker", `,"ingress":true`)}, ""), "nodes.w.port", "defines none"},
		{"port out of range", g([]string{svc("w", "web", `,"port":70000`)}, ""), "nodes.w.port", "TCP port"},
		{"ingress on a component", g([]string{`{"id":"a","kind":"component","plugin":"noop","ingress":true}`}, ""), "nodes.a.ingress", "only service nodes"},
		{"health both", g([]string{svc("a", "worker", `,"health":{"http":"/h","command":["true"]}`)}, ""), "nodes.a.health", "not both"},
		{"health path", g([]string{svc("a", "worker", `,"health":{"http":"healthz"}`)}, ""), "nodes.a.health.http", "starting with /"},
		{"health timeout", g([]string{svc("a", "worker", `,"health":{"http":"/h","timeout":"soon"}`)}, ""), "nodes.a.health.timeout", "duration"},
		{"retries", g([]string{`{"id":"a","kind":"component","plugin":"noop","retries":{"count":-1}}`}, ""), "nodes.a.retries.count", "between"},
		{"resources", `{"resources":{"cpu":-1},"nodes":[` + svc("a", "worker", "") + `]}`, "resources.cpu", "between"},
	}
	lk := testLookup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, order, err := Check([]byte(tc.graph), lk)
			if err == nil {
				t.Fatalf("accepted (order %v); want a problem at %s", order, tc.field)
			}
			p := errs.FieldsOf(err)
			if p == nil {
				t.Fatalf("error %T %v is not field problems", err, err)
			}
			msg, ok := p[tc.field]
			if !ok {
				t.Fatalf("no problem at %q; got %v", tc.field, p)
			}
			if !strings.Contains(msg, tc.contains) {
				t.Fatalf("%s: %q does not contain %q", tc.field, msg, tc.contains)
			}
			if order != nil {
				t.Fatalf("order %v returned with problems", order)
			}
		})
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	raw := `{"nodes":[
		{"id":"db","kind":"service","service":"nosuch"},
		{"id":"m","kind":"component","plugin":"postgres-create-db","params":{"host":1}},
		{"id":"api","kind":"service","service":"web","ingress":true,"env":{"A":"${secrets.nope}","B":"${steps.m.outputs.x}"}}],
	  "edges":[["db","zz"]]}`
	_, _, err := Check([]byte(raw), testLookup(t))
	p := errs.FieldsOf(err)
	if p == nil {
		t.Fatalf("want field problems, got %v", err)
	}
	for _, f := range []string{"nodes.db.service", "nodes.m.params", "nodes.m.params.host", "nodes.api.port", "nodes.api.env.A", "nodes.api.env.B", "edges[0]"} {
		if _, ok := p[f]; !ok {
			t.Errorf("missing problem at %s; got %v", f, p)
		}
	}
}

func TestTemplatedParamSkipsSchemaTypeCheck(t *testing.T) {
	// "port" must be an integer, but a reference is only known at deploy time.
	raw := `{"nodes":[
		{"id":"a","kind":"component","plugin":"noop"},
		{"id":"m","kind":"component","plugin":"postgres-create-db","params":{"host":"${steps.a.outputs.host}","database":"app","port":"${steps.a.outputs.port}"}}],
	  "edges":[["a","m"]]}`
	if _, _, err := Check([]byte(raw), testLookup(t)); err != nil {
		t.Fatalf("templated params refused: %v", err)
	}
}

func TestTransitivePredecessorAllowed(t *testing.T) {
	raw := `{"nodes":[
		{"id":"a","kind":"component","plugin":"noop"},
		{"id":"b","kind":"component","plugin":"noop"},
		{"id":"c","kind":"service","service":"worker","env":{"X":"${steps.a.outputs.v} and ${secrets.db_password}"}}],
	  "edges":[["a","b"],["b","c"]]}`
	if _, _, err := Check([]byte(raw), testLookup(t)); err != nil {
		t.Fatalf("transitive reference refused: %v", err)
	}
}

func TestCompileSchemaRejectsInvalidAndExternal(t *testing.T) {
	for _, s := range []string{
		`{"type": 5}`,
		`[1,2]`,
		`{"type":"object"`,
		`{"$ref": "file:///etc/passwd"}`,
		`{"$ref": "http://127.0.0.1:1/x.json"}`,
		`{"properties":{"a":{"pattern":"(["}}}`,
	} {
		if _, err := CompileSchema([]byte(s)); err == nil {
			t.Errorf("schema %s accepted", s)
		}
	}
	for _, s := range []string{``, `{}`, `true`, `{"type":"object","properties":{"a":{"type":"string"}}}`} {
		if _, err := CompileSchema([]byte(s)); err != nil {
			t.Errorf("schema %q refused: %v", s, err)
		}
	}
}

func TestProblemsAreJSONFriendly(t *testing.T) {
	_, _, err := Check([]byte(`{"nodes":[]}`), testLookup(t))
	b, jerr := json.Marshal(errs.FieldsOf(err))
	if jerr != nil || !strings.Contains(string(b), "at least one node") {
		t.Fatalf("marshal problems: %s %v", b, jerr)
	}
}

// FuzzCheck feeds arbitrary JSON: Check never panics and returns either an
// execution order covering every node exactly once, or field problems.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte(`{"nodes":[{"id":"a","kind":"service","service":"worker"}],"edges":[["a","a"]]}`))
	f.Add([]byte(`{"nodes":[{"id":"a","kind":"component","plugin":"postgres-create-db","params":{"host":["${steps.a.outputs.b}"],"database":{"x":"${"}}}]}`))
	f.Add([]byte(`{"nodes":[{"id":"a","kind":"service","service":"web","ingress":true,"health":{"command":[""]},"retries":{"count":3,"backoff":"1s"}}],"edges":[["a","b"],["b","a"]]}`))
	f.Add([]byte(`{"nodes":null,"edges":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"nodes":[{"id":"x","kind":"component","plugin":"noop","params":{"a":"${secrets.db_password}${steps.x.outputs.y}"}}]}`))
	f.Add([]byte(`{"resources":{"cpu":1,"memory_mb":512},"nodes":[{"id":"a","kind":"service","service":"web","resources":{"cpu":0.5}},{"id":"b","kind":"service","service":"worker"},{"id":"c","kind":"component","plugin":"noop","resources":{"memory_mb":64}}]}`))
	f.Add([]byte(`{"nodes":[{"id":"a","kind":"service","service":"web","resources":{"cpu":2,"memory_mb":16}},{"id":"b","kind":"service","service":"worker","resources":{"cpu":-1,"memory_mb":5}}]}`))
	lk := testLookup(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		g, order, err := Check(raw, lk)
		if err != nil {
			p := errs.FieldsOf(err)
			if p == nil || len(p) == 0 {
				t.Fatalf("error is not field problems: %T %v", err, err)
			}
			if order != nil {
				t.Fatalf("order with problems")
			}
			return
		}
		if len(order) != len(g.Nodes) || len(order) == 0 {
			t.Fatalf("order %v for %d nodes", order, len(g.Nodes))
		}
		pos := map[string]int{}
		for i, id := range order {
			if _, dup := pos[id]; dup {
				t.Fatalf("id %s twice in order", id)
			}
			pos[id] = i
		}
		for _, e := range g.Edges {
			if pos[e[0]] >= pos[e[1]] {
				t.Fatalf("edge %v violates order %v", e, order)
			}
		}
		// Shares of a valid graph either stay within the budget, every
		// container getting a positive limit, or name the problem.
		budget := protocol.Resources{CPU: 1, MemoryMB: 512}
		shares, err := Shares(g, budget, func(string) protocol.Resources { return protocol.Resources{CPU: 0.1, MemoryMB: 32} })
		if err != nil {
			p := errs.FieldsOf(err)
			if p == nil || len(p) == 0 {
				t.Fatalf("shares error is not field problems: %T %v", err, err)
			}
			return
		}
		var cpu float64
		var mem int64
		for _, n := range g.Nodes {
			r, ok := shares[n.ID]
			if !ok || r.CPU <= 0 || r.MemoryMB <= 0 {
				t.Fatalf("node %s got share %+v", n.ID, r)
			}
			cpu += r.CPU
			mem += r.MemoryMB
		}
		if cpu > budget.CPU+1e-6 || mem > budget.MemoryMB {
			t.Fatalf("shares add up to %v CPUs and %d MB, over the budget %+v", cpu, mem, budget)
		}
	})
}
