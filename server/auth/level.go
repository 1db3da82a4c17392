package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/nullops/nullops/server/store"
)

// Level is what a principal may do with a resource (docs/architecture.md, "Security model").
type Level int

// Levels, ordered: a higher level includes the lower ones.
const (
	// None: the resource is invisible (answer 404).
	None Level = iota
	// Read: view status, logs, metrics, configuration (never secret values).
	Read
	// Full: also create, clone, extend, cancel, delete.
	Full
)

func (l Level) String() string {
	switch l {
	case Read:
		return store.LevelRead
	case Full:
		return store.LevelFull
	}
	return "none"
}

// ParseLevel parses "read" or "full".
func ParseLevel(s string) (Level, error) {
	switch s {
	case store.LevelRead:
		return Read, nil
	case store.LevelFull:
		return Full, nil
	}
	return None, fmt.Errorf("level %q: want read or full", s)
}

// Principal is who is calling.
type Principal struct {
	UserID   int64
	Username string
	Admin    bool
	Via      string // ViaSession or ViaToken
	TokenID  int64  // the API token used, when Via == ViaToken
	// TokenExpiresAt is that token's expiry (nil = none).
	TokenExpiresAt *time.Time
}

// How a principal authenticated.
const (
	ViaSession = "session"
	ViaToken   = "token"
)

// VisibleTo is nil for admins (no restriction) and the user id otherwise;
// store list filters take it (e.g. store.DeploymentFilter.VisibleTo).
func (p *Principal) VisibleTo() *int64 {
	if p == nil {
		id := int64(-1) // matches no user: nothing is visible
		return &id
	}
	if p.Admin {
		return nil
	}
	id := p.UserID
	return &id
}

// Authorizer is the one place that decides access.
type Authorizer struct {
	Store *store.Store
}

// Level returns what p may do with a resource of project projectID in
// environment environmentID: admins get Full; users get the highest level any
// of their teams holds on the project or on the environment. Pass 0 for an id
// that does not apply (a project's own pages: environmentID 0; an
// environment or its nodes: projectID 0). A nil principal gets None.
func (a *Authorizer) Level(ctx context.Context, p *Principal, projectID, environmentID int64) (Level, error) {
	if p == nil {
		return None, nil
	}
	if p.Admin {
		return Full, nil
	}
	if projectID == 0 && environmentID == 0 {
		return None, nil
	}
	s, err := a.Store.UserGrantLevel(ctx, p.UserID, projectID, environmentID)
	if err != nil {
		return None, err
	}
	if s == "" {
		return None, nil
	}
	return ParseLevel(s)
}

// LevelOfRank is Level for a row of a store list filtered by
// p.VisibleTo() whose statement ranked the user's grants on the row's
// project and environment as store.UserGrantLevel does (2 full, 1 read, 0
// none; store.DeploymentListItem.GrantRank): admins get Full.
func LevelOfRank(p *Principal, rank int) Level {
	switch {
	case p == nil:
		return None
	case p.Admin:
		return Full
	case rank >= 2:
		return Full
	case rank == 1:
		return Read
	}
	return None
}

// Visibility is what a principal may list: everything (All) or resources of
// the given projects and environments (any level).
type Visibility struct {
	All            bool
	ProjectIDs     []int64
	EnvironmentIDs []int64
}

// Sees reports whether a resource of projectID/environmentID (0 = not
// applicable) is visible: a grant on either is enough. It is the rule of
// deployments and of audit entries; the named rules below say which
// resource follows which.
func (v Visibility) Sees(projectID, environmentID int64) bool {
	if v.All {
		return true
	}
	return (projectID != 0 && contains(v.ProjectIDs, projectID)) || (environmentID != 0 && contains(v.EnvironmentIDs, environmentID))
}

// The visibility rule of every resource, written once. The store's list
// filters implement them in SQL (store.VisibleToUserSQL, ListProjects,
// ListEnvironments) and Authorizer.Level decides single reads;
// server/api's TestListAndSingleVisibilityAgree checks, for every resource
// and kind of caller, that lists, single reads and these rules agree.

// SeesProject: a project is visible with a grant on it, or with any
// environment grant (an environment grant covers every project's
// deployments in that environment, so their projects must be listable).
func (v Visibility) SeesProject(id int64) bool {
	return v.All || contains(v.ProjectIDs, id) || len(v.EnvironmentIDs) > 0
}

// SeesEnvironment: an environment is visible with a grant on it, or with
// any project grant (a project grant covers its deployments in every
// environment).
func (v Visibility) SeesEnvironment(id int64) bool {
	return v.All || contains(v.EnvironmentIDs, id) || len(v.ProjectIDs) > 0
}

// SeesDeployment: a deployment is visible with a grant on its project or
// on its environment (Authorizer.Level then gives Read or Full).
func (v Visibility) SeesDeployment(projectID, environmentID int64) bool {
	return v.Sees(projectID, environmentID)
}

// SeesNode: a node is visible with a grant on its environment.
func (v Visibility) SeesNode(environmentID int64) bool { return v.Sees(0, environmentID) }

// SeesAuditEntry: an entry is visible with a grant on its project or its
// environment; entries with neither are for admins only.
func (v Visibility) SeesAuditEntry(projectID, environmentID *int64) bool {
	var pid, eid int64
	if projectID != nil {
		pid = *projectID
	}
	if environmentID != nil {
		eid = *environmentID
	}
	return v.Sees(pid, eid)
}

func contains(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Visible returns the projects and environments p holds any grant on. For
// SQL list filters prefer p.VisibleTo() with store.VisibleToUserSQL.
func (a *Authorizer) Visible(ctx context.Context, p *Principal) (Visibility, error) {
	if p == nil {
		return Visibility{ProjectIDs: []int64{}, EnvironmentIDs: []int64{}}, nil
	}
	if p.Admin {
		return Visibility{All: true}, nil
	}
	pids, eids, err := a.Store.UserGrantTargets(ctx, p.UserID)
	if err != nil {
		return Visibility{}, err
	}
	return Visibility{ProjectIDs: pids, EnvironmentIDs: eids}, nil
}

// Levels is a principal's level on every project and environment, loaded
// once (Authorizer.Levels) to annotate a whole list without a query per row.
type Levels struct {
	all          bool
	projects     map[int64]Level
	environments map[int64]Level
}

// Of is what Authorizer.Level answers for the same ids.
func (l Levels) Of(projectID, environmentID int64) Level {
	if l.all {
		return Full
	}
	best := None
	if projectID != 0 {
		best = max(best, l.projects[projectID])
	}
	if environmentID != 0 {
		best = max(best, l.environments[environmentID])
	}
	return best
}

// Levels loads p's levels on everything it holds a grant on, in one query
// (none for admins and nil principals).
func (a *Authorizer) Levels(ctx context.Context, p *Principal) (Levels, error) {
	if p == nil {
		return Levels{}, nil
	}
	if p.Admin {
		return Levels{all: true}, nil
	}
	ps, es, err := a.Store.UserGrantLevels(ctx, p.UserID)
	if err != nil {
		return Levels{}, err
	}
	conv := func(m map[int64]string) (map[int64]Level, error) {
		out := make(map[int64]Level, len(m))
		for id, s := range m {
			l, err := ParseLevel(s)
			if err != nil {
				return nil, err
			}
			out[id] = l
		}
		return out, nil
	}
	l := Levels{}
	if l.projects, err = conv(ps); err != nil {
		return Levels{}, err
	}
	if l.environments, err = conv(es); err != nil {
		return Levels{}, err
	}
	return l, nil
}
