package dynconfig

import (
	"maps"
	"slices"
	"strings"
)

// Compiled is a State with its compiled routes, kept up to date by deltas:
// applying one recompiles only the routers it names and the routers using
// a service it names. The result is always what Compile gives for the whole
// configuration; when a delta touches a host claimed by two routers (which
// the server never publishes), Apply falls back to compiling everything.
// Not safe for concurrent use.
type Compiled struct {
	state     *State
	routes    map[string]Route               // served routes by router, with the hosts they own
	owner     map[string]string              // host → router serving it
	users     map[string]map[string]struct{} // service → routers naming it
	conflicts int                            // host conflicts among the current problems
}

// NewCompiled compiles the whole state.
func NewCompiled(st *State) (*Compiled, []Problem) {
	c := &Compiled{state: st}
	return c, c.full()
}

// State is the configuration the routes are compiled from.
func (c *Compiled) State() *State { return c.state }

// Routes returns every served route, sorted by router name, as Compile
// would.
func (c *Compiled) Routes() []Route {
	out := slices.Collect(maps.Values(c.routes))
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Router, b.Router) })
	return out
}

// Update is what a delta changed in the served routes. With Full set the
// whole table was recompiled: take Routes() instead. Otherwise the routes
// of Removed are gone (their hosts are unrouted unless Set routes them) and
// the routes of Set are new or replace the one of the same router.
type Update struct {
	Full     bool
	Removed  []Route
	Set      []Route
	Problems []Problem // of the routers the delta touched (all of them when Full)
}

func (c *Compiled) full() []Problem {
	cfg := c.state.Config()
	routes, problems, conflicts := compileAll(cfg)
	c.routes = make(map[string]Route, len(routes))
	c.owner = make(map[string]string, len(routes))
	for _, r := range routes {
		c.routes[r.Router] = r
		for _, h := range r.Hosts {
			c.owner[h] = r.Router
		}
	}
	c.conflicts = conflicts
	c.users = make(map[string]map[string]struct{}, len(cfg.HTTP.Services)+2)
	for n, r := range cfg.HTTP.Routers {
		c.use(r.Service, n)
	}
	return problems
}

func (c *Compiled) use(service, router string) {
	u := c.users[service]
	if u == nil {
		u = map[string]struct{}{}
		c.users[service] = u
	}
	u[router] = struct{}{}
}

func (c *Compiled) unuse(service, router string) {
	if u := c.users[service]; u != nil {
		delete(u, router)
		if len(u) == 0 {
			delete(c.users, service)
		}
	}
}

// Apply applies d to the state (see State.Apply: on error nothing changed)
// and recompiles what it touched.
func (c *Compiled) Apply(d *Delta) (Update, error) {
	cfg := c.state.Config()
	affected := make(map[string]struct{}, len(d.Routers)+len(d.RemoveRouters))
	for n := range d.Routers {
		affected[n] = struct{}{}
	}
	for _, n := range d.RemoveRouters {
		affected[n] = struct{}{}
	}
	for n := range d.Services {
		for r := range c.users[n] {
			affected[r] = struct{}{}
		}
	}
	for _, n := range d.RemoveServices {
		for r := range c.users[n] {
			affected[r] = struct{}{}
		}
	}
	oldService := make(map[string]string, len(affected))
	for n := range affected {
		if r, ok := cfg.HTTP.Routers[n]; ok {
			oldService[n] = r.Service
		}
	}
	if err := c.state.Apply(d); err != nil {
		return Update{}, err
	}
	for n := range affected {
		if s, ok := oldService[n]; ok {
			c.unuse(s, n)
		}
		if r, ok := cfg.HTTP.Routers[n]; ok {
			c.use(r.Service, n)
		}
	}
	if c.conflicts > 0 {
		return Update{Full: true, Problems: c.full()}, nil
	}
	names := slices.Sorted(maps.Keys(affected))
	var u Update
	for _, n := range names {
		if old, ok := c.routes[n]; ok {
			for _, h := range old.Hosts {
				delete(c.owner, h)
			}
			delete(c.routes, n)
			u.Removed = append(u.Removed, old)
		}
	}
	for _, n := range names {
		r, ok := cfg.HTTP.Routers[n]
		if !ok {
			continue
		}
		rt, err := compileRouter(cfg.HTTP, n, r)
		if err != nil {
			u.Problems = append(u.Problems, Problem{Router: n, Err: err})
			continue
		}
		for _, h := range rt.Hosts {
			if _, taken := c.owner[h]; taken {
				// Two routers (or one router twice) claim the host: let the
				// whole compilation decide who serves it, as Compile does.
				return Update{Full: true, Problems: c.full()}, nil
			}
			c.owner[h] = n
		}
		c.routes[n] = rt
		u.Set = append(u.Set, rt)
	}
	return u, nil
}
