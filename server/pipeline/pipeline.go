// Package pipeline validates a pipeline graph (protocol.Graph, docs/architecture.md,
// "Pipeline graph") against the catalog and computes its execution order. It is
// pure: catalog look-ups go through the Lookup interface, so it holds no
// state and speaks no SQL.
//
// Every problem is reported at once as errs.Fields (code ErrCode), keyed by a field path that
// names the node, e.g. "nodes.api.env.DATABASE_URL", "nodes.mkdb.params.host",
// "nodes[3].id" (a node without a usable id), "edges[2]" or "edges" (cycle).
package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
)

// Limits on a graph (it is admin input, and the fuzz target's).
const (
	MaxNodes      = 200
	MaxEdges      = 2000
	MaxGraphBytes = 1 << 20
	MaxRetries    = 20
	maxEnv        = 200
)

var (
	dnsLabelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envNameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,254}$`)
)

// IsDNSLabel reports whether s is a lowercase RFC 1123 label (node ids,
// project and environment names).
func IsDNSLabel(s string) bool { return dnsLabelRe.MatchString(s) }

// ErrCode is the code of the error of an invalid graph; its errs.Fields
// name every problem.
const ErrCode = "invalid_pipeline"

// ServiceInfo is what validation needs to know about a catalog service.
type ServiceInfo struct {
	Ports []int
}

// PluginInfo is what validation needs to know about a catalog plugin.
type PluginInfo struct {
	Schema *jsonschema.Schema // compiled params schema; nil accepts anything
}

// Lookup resolves names used by a graph. Secret reports whether a secret
// with that name is visible to the project (global or project scope).
type Lookup interface {
	Service(name string) (ServiceInfo, bool)
	Plugin(name string) (PluginInfo, bool)
	Secret(name string) bool
}

// Catalog is a Lookup over in-memory maps.
type Catalog struct {
	Services map[string]ServiceInfo
	Plugins  map[string]PluginInfo
	Secrets  map[string]bool
}

// Service implements Lookup.
func (c Catalog) Service(name string) (ServiceInfo, bool) { s, ok := c.Services[name]; return s, ok }

// Plugin implements Lookup.
func (c Catalog) Plugin(name string) (PluginInfo, bool) { p, ok := c.Plugins[name]; return p, ok }

// Secret implements Lookup.
func (c Catalog) Secret(name string) bool { return c.Secrets[name] }

// Position is where the pipeline editor draws a node. It is stored with the
// pipeline but is not part of the graph an agent runs.
type Position struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Layout is the editor's position of each node, by node id.
type Layout map[string]Position

// storedNode and storedGraph are a pipeline as submitted and stored: the
// execution graph with each node's position.
type storedNode struct {
	protocol.Node
	Position *Position `json:"position,omitempty"`
}

type storedGraph struct {
	Resources *protocol.Resources `json:"resources,omitempty"`
	Nodes     []storedNode        `json:"nodes"`
	Edges     [][2]string         `json:"edges"`
}

// DecodeDocument parses a pipeline strictly (unknown fields are errors)
// into the graph agents run and the editor's layout.
func DecodeDocument(raw []byte) (protocol.Graph, Layout, error) {
	if len(raw) > MaxGraphBytes {
		return protocol.Graph{}, nil, errs.Fields{"graph": fmt.Sprintf("graph is %d bytes; at most %d are allowed", len(raw), MaxGraphBytes)}.ErrCode(ErrCode)
	}
	var sg storedGraph
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sg); err != nil {
		return protocol.Graph{}, nil, errs.Fields{"graph": "not a valid pipeline graph: " + err.Error()}.ErrCode(ErrCode)
	}
	if dec.More() {
		return protocol.Graph{}, nil, errs.Fields{"graph": "data after the graph object"}.ErrCode(ErrCode)
	}
	g := protocol.Graph{Resources: sg.Resources, Edges: sg.Edges}
	if sg.Nodes != nil {
		g.Nodes = make([]protocol.Node, len(sg.Nodes))
	}
	l := Layout{}
	for i, n := range sg.Nodes {
		g.Nodes[i] = n.Node
		if n.Position != nil {
			l[n.ID] = *n.Position
		}
	}
	return g, l, nil
}

// Decode parses a pipeline strictly into the graph agents run (the
// editor's layout is dropped).
func Decode(raw []byte) (protocol.Graph, error) {
	g, _, err := DecodeDocument(raw)
	return g, err
}

// Encode is the stored form of a pipeline: g with each node's position
// from l.
func Encode(g protocol.Graph, l Layout) ([]byte, error) {
	sg := storedGraph{Resources: g.Resources, Edges: g.Edges}
	if g.Nodes != nil {
		sg.Nodes = make([]storedNode, len(g.Nodes))
	}
	for i, n := range g.Nodes {
		sg.Nodes[i].Node = n
		if p, ok := l[n.ID]; ok {
			sg.Nodes[i].Position = &p
		}
	}
	return json.Marshal(sg)
}

// Check decodes and validates raw graph JSON.
func Check(raw []byte, l Lookup) (protocol.Graph, []string, error) {
	g, _, order, err := CheckDocument(raw, l)
	return g, order, err
}

// CheckDocument is Check that also returns the editor's layout.
func CheckDocument(raw []byte, l Lookup) (protocol.Graph, Layout, []string, error) {
	g, layout, err := DecodeDocument(raw)
	if err != nil {
		return g, nil, nil, err
	}
	order, err := Validate(g, l)
	return g, layout, order, err
}

// Validate checks every rule and returns the execution order
// (protocol.Graph.Order: the order the agent runs the nodes in), or an error
// whose errs.Fields name every issue.
func Validate(g protocol.Graph, l Lookup) ([]string, error) {
	p := errs.Fields{}
	if len(g.Nodes) == 0 {
		p.Add("nodes", "a pipeline needs at least one node")
		return nil, p.ErrCode(ErrCode)
	}
	if len(g.Nodes) > MaxNodes {
		p.Add("nodes", "%d nodes; at most %d are allowed", len(g.Nodes), MaxNodes)
		return nil, p.ErrCode(ErrCode)
	}
	if len(g.Edges) > MaxEdges {
		p.Add("edges", "%d edges; at most %d are allowed", len(g.Edges), MaxEdges)
		return nil, p.ErrCode(ErrCode)
	}
	if r := g.Resources; r != nil {
		if r.CPU < 0 || r.CPU > 1024 {
			p.Add("resources.cpu", "must be between 0 and 1024")
		}
		if r.MemoryMB < 0 || r.MemoryMB > 1<<24 {
			p.Add("resources.memory_mb", "must be between 0 and %d", 1<<24)
		}
	}

	// Ids: index of each valid, unique id.
	index := map[string]int{}
	keys := make([]string, len(g.Nodes)) // field prefix per node
	for i, n := range g.Nodes {
		keys[i] = fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.ID == "":
			p.Add(keys[i]+".id", "id is required")
			continue
		case !dnsLabelRe.MatchString(n.ID):
			p.Add(keys[i]+".id", "%q is not a DNS label (lowercase letters, digits and -, at most 63, starting and ending with a letter or digit)", truncate(n.ID, 70))
			continue
		}
		if j, dup := index[n.ID]; dup {
			p.Add("nodes."+n.ID+".id", "duplicate id: nodes %d and %d both use %q", j, i, n.ID)
			keys[i] = "nodes." + n.ID
			continue
		}
		index[n.ID] = i
		keys[i] = "nodes." + n.ID
	}

	// Edges and the graph structure.
	succ := make([][]int, len(g.Nodes))
	pred := make([][]int, len(g.Nodes))
	seenEdge := map[[2]int]bool{}
	for ei, e := range g.Edges {
		f := fmt.Sprintf("edges[%d]", ei)
		from, okFrom := index[e[0]]
		to, okTo := index[e[1]]
		if !okFrom {
			p.Add(f, "unknown node %q", truncate(e[0], 70))
		}
		if !okTo {
			p.Add(f, "unknown node %q", truncate(e[1], 70))
		}
		if !okFrom || !okTo {
			continue
		}
		if from == to {
			p.Add(f, "node %q cannot depend on itself", e[0])
			continue
		}
		if seenEdge[[2]int{from, to}] {
			continue
		}
		seenEdge[[2]int{from, to}] = true
		succ[from] = append(succ[from], to)
		pred[to] = append(pred[to], from)
	}
	order, cycle := topoOrder(g, succ)
	if cycle != nil {
		p.Add("edges", "the graph has a cycle: %s", strings.Join(cycle, " → "))
	}
	var ancestors []map[int]bool
	if cycle == nil {
		ancestors = transitivePreds(order, pred)
	}

	// Nodes.
	for i, n := range g.Nodes {
		k := keys[i]
		var svc ServiceInfo
		switch n.Kind {
		case protocol.KindService:
			if n.Service == "" {
				p.Add(k+".service", "a service node names a catalog service")
			} else if s, ok := l.Service(n.Service); !ok {
				p.Add(k+".service", "unknown service %q", truncate(n.Service, 70))
			} else {
				svc = s
			}
			if n.Plugin != "" {
				p.Add(k+".plugin", "only component nodes name a plugin")
			}
			if len(n.Params) > 0 {
				p.Add(k+".params", "only component nodes take params")
			}
			checkService(p, k, n, svc)
		case protocol.KindComponent:
			if n.Plugin == "" {
				p.Add(k+".plugin", "a component node names a catalog plugin")
			} else if pl, ok := l.Plugin(n.Plugin); !ok {
				p.Add(k+".plugin", "unknown plugin %q", truncate(n.Plugin, 70))
			} else if pl.Schema != nil {
				for loc, msg := range schemaProblems(pl.Schema, n.Params) {
					field := k + ".params"
					if loc != "" {
						field += "." + loc
					}
					p.Add(field, "%s", msg)
				}
			}
			if n.Service != "" {
				p.Add(k+".service", "only service nodes name a service")
			}
			if len(n.Env) > 0 {
				p.Add(k+".env", "component nodes take params, not env")
			}
			if n.Port != 0 || n.Ingress {
				p.Add(k+".ingress", "only service nodes can be exposed through ingress")
			}
			if n.Health != nil {
				p.Add(k+".health", "only service nodes have a health check")
			}
		case "":
			p.Add(k+".kind", "kind is required: service or component")
		default:
			p.Add(k+".kind", "unknown kind %q: use service or component", truncate(n.Kind, 40))
		}
		if r := n.Resources; r != nil {
			if r.CPU < 0 || r.CPU > 1024 {
				p.Add(k+".resources.cpu", "must be between 0 (not given) and 1024")
			}
			if r.MemoryMB != 0 && (r.MemoryMB < MinShareMemoryMB || r.MemoryMB > 1<<24) {
				p.Add(k+".resources.memory_mb", "must be 0 (not given) or between %d and %d", MinShareMemoryMB, 1<<24)
			}
		}
		if n.Retries != nil {
			if n.Retries.Count < 0 || n.Retries.Count > MaxRetries {
				p.Add(k+".retries.count", "must be between 0 and %d", MaxRetries)
			}
			checkDuration(p, k+".retries.backoff", n.Retries.Backoff)
		}

		// Template references.
		var anc map[int]bool
		if ancestors != nil {
			anc = ancestors[i]
		}
		checkRefs := func(field, s string) {
			refs, bad := ParseRefs(s)
			for _, b := range bad {
				p.Add(field, "%s", b)
			}
			for _, r := range refs {
				switch r.Kind {
				case refSecrets:
					if !l.Secret(r.Secret) {
						p.Add(field, "%s: no secret %q in this project or globally", r.Raw, r.Secret)
					}
				case refSteps:
					j, ok := index[r.Step]
					switch {
					case !ok:
						p.Add(field, "%s: no node %q", r.Raw, r.Step)
					case g.Nodes[j].Kind != protocol.KindComponent:
						p.Add(field, "%s: %q is a %s node; only component steps have outputs", r.Raw, r.Step, g.Nodes[j].Kind)
					case j == i:
						p.Add(field, "%s: a node cannot use its own outputs", r.Raw)
					case anc != nil && !anc[j]:
						p.Add(field, "%s: step %q does not run before %q; add an edge [%q, %q] or a path between them", r.Raw, r.Step, n.ID, r.Step, n.ID)
					}
				}
			}
		}
		envKeys := make([]string, 0, len(n.Env))
		for name := range n.Env {
			envKeys = append(envKeys, name)
		}
		sort.Strings(envKeys)
		if len(envKeys) > maxEnv {
			p.Add(k+".env", "%d variables; at most %d are allowed", len(envKeys), maxEnv)
		}
		for _, name := range envKeys {
			field := k + ".env." + name
			if !envNameRe.MatchString(name) {
				p.Add(k+".env", "%q is not a valid variable name", truncate(name, 70))
				continue
			}
			checkRefs(field, n.Env[name])
		}
		walkStrings(n.Params, k+".params", checkRefs)
	}
	if len(p) > 0 {
		return nil, p.ErrCode(ErrCode)
	}
	ids := make([]string, len(order))
	for i, idx := range order {
		ids[i] = g.Nodes[idx].ID
	}
	return ids, nil
}

func checkService(p errs.Fields, k string, n protocol.Node, svc ServiceInfo) {
	if n.Port < 0 || n.Port > 65535 {
		p.Add(k+".port", "must be a TCP port (1-65535)")
	}
	if n.Ingress && n.Port == 0 && len(svc.Ports) != 1 {
		if len(svc.Ports) == 0 {
			p.Add(k+".port", "an ingress service needs a port: set port (the service defines none)")
		} else {
			p.Add(k+".port", "an ingress service needs a port: set port (the service defines %d ports)", len(svc.Ports))
		}
	}
	if h := n.Health; h != nil {
		CheckHealth(p, k+".health", h)
	}
}

// CheckHealth validates a health check: exactly one of http (a path) and
// command, and positive durations.
func CheckHealth(p errs.Fields, k string, h *protocol.Health) {
	switch {
	case h.HTTP != "" && len(h.Command) > 0:
		p.Add(k, "set http or command, not both")
	case h.HTTP == "" && len(h.Command) == 0:
		p.Add(k, "set http (a path like /healthz) or command")
	case h.HTTP != "" && !strings.HasPrefix(h.HTTP, "/"):
		p.Add(k+".http", "must be a path starting with /")
	}
	for i, a := range h.Command {
		if a == "" && i == 0 {
			p.Add(k+".command", "the first element (the program) is empty")
		}
	}
	checkDuration(p, k+".timeout", h.Timeout)
	checkDuration(p, k+".interval", h.Interval)
}

func checkDuration(p errs.Fields, field, s string) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.Add(field, "%q is not a positive Go duration like 30s or 2m", truncate(s, 40))
	}
}

// walkStrings calls fn for every string inside v with its field path.
func walkStrings(v any, field string, fn func(field, s string)) {
	switch t := v.(type) {
	case string:
		fn(field, t)
	case map[string]any:
		ks := make([]string, 0, len(t))
		for k := range t {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			walkStrings(t[k], field+"."+k, fn)
		}
	case []any:
		for i, x := range t {
			walkStrings(x, field+"["+strconv.Itoa(i)+"]", fn)
		}
	}
}

// topoOrder is the execution order (protocol.OrderIndices) over the nodes
// with usable ids. When there is a cycle it returns one cycle's ids.
func topoOrder(g protocol.Graph, succ [][]int) (order []int, cycle []string) {
	order, c := protocol.OrderIndices(len(g.Nodes), succ)
	for _, idx := range c {
		cycle = append(cycle, g.Nodes[idx].ID)
	}
	return order, cycle
}

// transitivePreds returns, per node, the set of nodes that run before it.
func transitivePreds(order []int, pred [][]int) []map[int]bool {
	anc := make([]map[int]bool, len(pred))
	for _, u := range order {
		m := map[int]bool{}
		for _, p := range pred[u] {
			m[p] = true
			for a := range anc[p] {
				m[a] = true
			}
		}
		anc[u] = m
	}
	return anc
}
