package ingresspub

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/server/store"
)

// table is the route table the publisher derives, kept so that a change of
// a few deployments is derived in O(change): every route row by key, the
// deployments of each node and environment (to know which deployments a
// node or environment change touches), and the claimants of each host (the
// first one in row order is served, as Build does). It owns the
// dynconfig.State of the published table, whose content hash is a sum of
// per-entry hashes: updating it costs O(change) too, and it is the same on
// every server replica for the same rows.
//
// Loaded from all rows (loadTable), it equals what Build gives for them;
// replace keeps it equal to that for the rows of the database after a
// change (TestIncrementalEqualsFullRecompute). Not safe for concurrent use
// (the publisher's computeMu guards it).
type table struct {
	b      *dynconfig.Builder // makes routers the way build does
	state  *dynconfig.State
	rows   map[routeKey]*tableRow
	deps   map[int64]*tableDep
	nodes  map[int64]map[int64]struct{} // node → deployments on it
	envs   map[int64]map[int64]struct{} // environment → deployments in it
	hosts  map[string][]routeKey        // host → rows claiming it, in row order
	names  map[string]int               // router name → rows using it
	shared int                          // router names used by more than one row

	routed, offline, deploying int
	problems                   map[routeKey]string
}

// routeKey names a route row; rows are ordered by deployment, then service
// in byte order (store.RouteRows's order).
type routeKey struct {
	dep int64
	svc string
}

func compareKeys(a, b routeKey) int {
	if c := cmp.Compare(a.dep, b.dep); c != 0 {
		return c
	}
	return cmp.Compare(a.svc, b.svc)
}

type tableRow struct {
	row   store.RouteRow
	entry *rowEntry
}

type tableDep struct {
	node, env int64
	svcs      []string
}

// loadTable derives the table from all rows (in store.RouteRows's order).
// With prev, the entries of its unchanged rows are reused and its state is
// taken over; the returned delta (not yet applied, see apply) turns that
// state into the new table.
func loadTable(rows []store.RouteRow, prev *table) (*table, *Snapshot, *dynconfig.Delta) {
	var memo map[routeKey]*tableRow
	state := dynconfig.NewState(nil)
	if prev != nil {
		memo, state = prev.rows, prev.state
	}
	t := &table{
		b:        dynconfig.NewBuilder(nil, nil),
		state:    state,
		rows:     make(map[routeKey]*tableRow, len(rows)),
		deps:     make(map[int64]*tableDep, len(rows)),
		nodes:    map[int64]map[int64]struct{}{},
		envs:     map[int64]map[int64]struct{}{},
		hosts:    make(map[string][]routeKey, len(rows)),
		names:    make(map[string]int, len(rows)),
		problems: map[routeKey]string{},
	}
	entries := make([]*rowEntry, len(rows))
	for i, r := range rows {
		k := routeKey{r.DeploymentID, r.Service}
		tr := memo[k]
		if tr == nil || tr.row != r {
			tr = &tableRow{row: r, entry: newRowEntry(t.b, r)}
		}
		entries[i] = tr.entry
		t.rows[k] = tr
		t.index(r.DeploymentID, r.NodeID, r.EnvironmentID, r.Service)
		t.claim(k, tr.entry)
	}
	s := build(rows, entries)
	t.routed, t.offline, t.deploying = s.Routed, s.Offline, s.Deploying
	for k := range t.rows {
		if msg := t.problemOf(k); msg != "" {
			t.problems[k] = msg
		}
	}
	return t, s, t.state.Diff(s.config)
}

// apply applies d (from replace or loadTable) to the state and keeps the
// counts of served hosts by kind.
func (t *table) apply(d *dynconfig.Delta, recount bool) error {
	cur := t.state.Config().HTTP.Routers
	type counts struct{ routed, offline, deploying int }
	c := counts{t.routed, t.offline, t.deploying}
	add := func(r *dynconfig.Router, sign int) {
		switch r.Service {
		case dynconfig.ServiceOffline:
			c.offline += sign
		case dynconfig.ServiceDeploying:
			c.deploying += sign
		default:
			c.routed += sign
		}
	}
	if recount {
		for _, n := range d.RemoveRouters {
			if r, ok := cur[n]; ok {
				add(r, -1)
			}
		}
		for n, r := range d.Routers {
			if old, ok := cur[n]; ok {
				add(old, -1)
			}
			add(r, +1)
		}
	}
	if err := t.state.Apply(d); err != nil {
		return err
	}
	t.routed, t.offline, t.deploying = c.routed, c.offline, c.deploying
	return nil
}

// index records that deployment dep, on node and in env, has service svc.
func (t *table) index(dep, node, env int64, svc string) {
	td := t.deps[dep]
	if td == nil {
		td = &tableDep{node: node, env: env}
		t.deps[dep] = td
		addTo(t.nodes, node, dep)
		addTo(t.envs, env, dep)
	}
	td.svcs = append(td.svcs, svc)
}

func addTo(m map[int64]map[int64]struct{}, k, dep int64) {
	if k == 0 {
		return
	}
	s := m[k]
	if s == nil {
		s = map[int64]struct{}{}
		m[k] = s
	}
	s[dep] = struct{}{}
}

func removeFrom(m map[int64]map[int64]struct{}, k, dep int64) {
	if s := m[k]; s != nil {
		delete(s, dep)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// claim adds row k to the users of its router name and, when its host is
// valid, to the claimants of its host.
func (t *table) claim(k routeKey, e *rowEntry) {
	if t.names[e.name]++; t.names[e.name] == 2 {
		t.shared++
	}
	if e.err != nil {
		return
	}
	c := t.hosts[e.host]
	i, _ := slices.BinarySearchFunc(c, k, compareKeys)
	t.hosts[e.host] = slices.Insert(c, i, k)
}

func (t *table) unclaim(k routeKey, e *rowEntry) {
	if t.names[e.name] == 2 {
		t.shared--
	}
	if t.names[e.name]--; t.names[e.name] == 0 {
		delete(t.names, e.name)
	}
	if e.err != nil {
		return
	}
	c := t.hosts[e.host]
	if i, found := slices.BinarySearchFunc(c, k, compareKeys); found {
		c = slices.Delete(c, i, i+1)
	}
	if len(c) == 0 {
		delete(t.hosts, e.host)
	} else {
		t.hosts[e.host] = c
	}
}

// served reports whether row k is in the table: its host is valid and no
// earlier row claims it.
func (t *table) served(k routeKey) bool {
	tr := t.rows[k]
	if tr == nil || tr.entry.err != nil {
		return false
	}
	c := t.hosts[tr.entry.host]
	return len(c) > 0 && c[0] == k
}

// problemOf is the problem build reports for row k ("" if none).
func (t *table) problemOf(k routeKey) string {
	tr := t.rows[k]
	if tr == nil {
		return ""
	}
	e := tr.entry
	if e.err != nil {
		return fmt.Sprintf("deployment %d service %q: %v", k.dep, k.svc, e.err)
	}
	c := t.hosts[e.host]
	if len(c) > 0 && c[0] != k {
		return fmt.Sprintf("deployment %d service %q: host %s is already used by router %s", k.dep, k.svc, e.host, t.rows[c[0]].entry.name)
	}
	return ""
}

// errShared: two rows share a router name, which build resolves by row
// order in a way replace does not reproduce. Node keys are DNS labels, so
// it does not happen with rows the server writes; when it does, the
// publisher derives the whole table instead.
var errShared = errors.New("two route rows share a router name")

// affected returns the deployments named, placed on one of nodes or in one
// of envs, as the table knows them (before the change).
func (t *table) affected(deps, nodes, envs map[int64]struct{}) map[int64]struct{} {
	out := maps.Clone(deps)
	if out == nil {
		out = map[int64]struct{}{}
	}
	for n := range nodes {
		for d := range t.nodes[n] {
			out[d] = struct{}{}
		}
	}
	for e := range envs {
		for d := range t.envs[e] {
			out[d] = struct{}{}
		}
	}
	return out
}

// replace makes the rows of the deployments affected (see affected) and of
// the deployments of rows those of rows, which holds all the current rows
// of each of them in row order (store.RouteRowsOf), and returns the delta
// of the state, not yet applied (see apply). On error (errShared) the
// table must be loaded again.
func (t *table) replace(affected map[int64]struct{}, rows []store.RouteRow) (*dynconfig.Delta, error) {
	byDep := make(map[int64][]store.RouteRow, len(affected))
	for _, r := range rows {
		affected[r.DeploymentID] = struct{}{}
		byDep[r.DeploymentID] = append(byDep[r.DeploymentID], r)
	}

	touched := map[routeKey]struct{}{} // rows set, changed or removed
	hosts := map[string]struct{}{}     // hosts whose claimants changed
	removed := map[string]struct{}{}   // router names of removed rows
	for dep := range affected {
		next := byDep[dep]
		if td := t.deps[dep]; td != nil {
			for _, svc := range td.svcs {
				if slices.ContainsFunc(next, func(r store.RouteRow) bool { return r.Service == svc }) {
					continue
				}
				k := routeKey{dep, svc}
				tr := t.rows[k]
				t.unclaim(k, tr.entry)
				if tr.entry.err == nil {
					hosts[tr.entry.host] = struct{}{}
				}
				removed[tr.entry.name] = struct{}{}
				delete(t.rows, k)
				touched[k] = struct{}{}
			}
			removeFrom(t.nodes, td.node, dep)
			removeFrom(t.envs, td.env, dep)
			delete(t.deps, dep)
		}
		for _, r := range next {
			k := routeKey{dep, r.Service}
			t.index(dep, r.NodeID, r.EnvironmentID, r.Service)
			old := t.rows[k]
			if old != nil && old.row == r {
				continue
			}
			if old != nil {
				t.unclaim(k, old.entry)
				if old.entry.err == nil {
					hosts[old.entry.host] = struct{}{}
				}
			}
			tr := &tableRow{row: r, entry: newRowEntry(t.b, r)}
			t.rows[k] = tr
			t.claim(k, tr.entry)
			if tr.entry.err == nil {
				hosts[tr.entry.host] = struct{}{}
			}
			touched[k] = struct{}{}
		}
	}
	if t.shared > 0 {
		return nil, errShared
	}
	// Every row whose host changed hands may change: all claimants of the
	// hosts touched.
	for h := range hosts {
		for _, k := range t.hosts[h] {
			touched[k] = struct{}{}
		}
	}
	// Router and service names are those of the row (RouterName of its
	// deployment and service), one row each (t.shared is 0).
	routers := make(map[string]*dynconfig.Router, len(touched))
	services := make(map[string]*dynconfig.Service, len(touched))
	for n := range removed {
		routers[n], services[n] = nil, nil
	}
	for k := range touched {
		delete(t.problems, k)
		tr := t.rows[k]
		if tr == nil {
			continue
		}
		e := tr.entry
		if msg := t.problemOf(k); msg != "" {
			t.problems[k] = msg
		}
		if t.served(k) {
			routers[e.name], services[e.name] = e.router, e.service
		} else {
			routers[e.name], services[e.name] = nil, nil
		}
	}
	return t.state.Patch(routers, services), nil
}

// problemList is the table's problems in row order, as build lists them.
func (t *table) problemList() []string {
	if len(t.problems) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(t.problems), compareKeys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = t.problems[k]
	}
	return out
}
