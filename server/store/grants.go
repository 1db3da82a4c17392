package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Access levels as stored in access_grants.level.
const (
	LevelRead = "read"
	LevelFull = "full"
)

// Grant scopes.
const (
	ScopeProject     = "project"
	ScopeEnvironment = "environment"
)

// GrantScope is what a grant is on: a project or an environment.
type GrantScope struct {
	Kind string // ScopeProject or ScopeEnvironment
	ID   int64
}

func (s GrantScope) column() (string, error) {
	switch s.Kind {
	case ScopeProject:
		return "project_id", nil
	case ScopeEnvironment:
		return "environment_id", nil
	}
	return "", fmt.Errorf("grant scope %q: want project or environment", s.Kind)
}

func (s GrantScope) table() string {
	if s.Kind == ScopeProject {
		return "projects"
	}
	return "environments"
}

// Grant gives a team a level on a project or an environment.
type Grant struct {
	ID            int64     `json:"id"`
	TeamID        int64     `json:"team_id"`
	TeamName      string    `json:"team"`
	ProjectID     *int64    `json:"project_id,omitempty"`
	EnvironmentID *int64    `json:"environment_id,omitempty"`
	Level         string    `json:"level"`
	CreatedAt     time.Time `json:"created_at"`
}

const grantColumns = `g.id, g.team_id, t.name, g.project_id, g.environment_id, g.level, g.created_at`

func scanGrant(row pgx.Row) (Grant, error) {
	var g Grant
	if err := row.Scan(&g.ID, &g.TeamID, &g.TeamName, &g.ProjectID, &g.EnvironmentID, &g.Level, &g.CreatedAt); err != nil {
		return Grant{}, notFound(err)
	}
	return g, nil
}

// GrantTargetExists reports whether the project or environment exists.
func (s *Store) GrantTargetExists(ctx context.Context, scope GrantScope) (bool, error) {
	if _, err := scope.column(); err != nil {
		return false, err
	}
	var ok bool
	if err := s.db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+scope.table()+" WHERE id = $1)", scope.ID).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up %s %d: %w", scope.Kind, scope.ID, err)
	}
	return ok, nil
}

// ListGrants pages through the grants on a project or environment by team name.
func (s *Store) ListGrants(ctx context.Context, scope GrantScope, limit, offset int) ([]Grant, int, error) {
	col, err := scope.column()
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.db.QueryRow(ctx, "SELECT count(*) FROM access_grants WHERE "+col+" = $1", scope.ID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count grants: %w", err)
	}
	rows, err := s.db.Query(ctx, "SELECT "+grantColumns+" FROM access_grants g JOIN teams t ON t.id = g.team_id WHERE g."+col+
		" = $1 ORDER BY t.name LIMIT $2 OFFSET $3", scope.ID, pageLimit(limit), max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("list grants: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Grant, error) { return scanGrant(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("list grants: %w", err)
	}
	return out, total, nil
}

// PutGrant sets a team's level on a project or environment, creating or
// replacing the grant. A missing team or target is ErrNotFound.
func PutGrant(ctx context.Context, q Querier, scope GrantScope, teamID int64, level string) (Grant, error) {
	col, err := scope.column()
	if err != nil {
		return Grant{}, err
	}
	var id int64
	err = q.QueryRow(ctx, "INSERT INTO access_grants (team_id, "+col+", level) VALUES ($1, $2, $3)"+
		" ON CONFLICT (team_id, "+col+") DO UPDATE SET level = EXCLUDED.level RETURNING id", teamID, scope.ID, level).Scan(&id)
	if IsForeignKeyViolation(err) {
		return Grant{}, fmt.Errorf("grant team %d on %s %d: %w", teamID, scope.Kind, scope.ID, ErrNotFound)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("grant team %d on %s %d: %w", teamID, scope.Kind, scope.ID, err)
	}
	g, err := scanGrant(q.QueryRow(ctx, "SELECT "+grantColumns+" FROM access_grants g JOIN teams t ON t.id = g.team_id WHERE g.id = $1", id))
	if err != nil {
		return Grant{}, fmt.Errorf("read grant %d: %w", id, err)
	}
	return g, nil
}

// DeleteGrant removes a team's grant on a project or environment.
func DeleteGrant(ctx context.Context, q Querier, scope GrantScope, teamID int64) error {
	col, err := scope.column()
	if err != nil {
		return err
	}
	tag, err := q.Exec(ctx, "DELETE FROM access_grants WHERE team_id = $1 AND "+col+" = $2", teamID, scope.ID)
	if err != nil {
		return fmt.Errorf("delete grant of team %d on %s %d: %w", teamID, scope.Kind, scope.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete grant of team %d on %s %d: %w", teamID, scope.Kind, scope.ID, ErrNotFound)
	}
	return nil
}

// grantRankSQL ranks the level of access_grants g: 2 full, 1 read.
const grantRankSQL = "CASE g.level WHEN 'full' THEN 2 ELSE 1 END"

// UserGrantLevel returns the highest level any team of the user holds on
// the project or on the environment ("" when none). A zero id is ignored.
func (s *Store) UserGrantLevel(ctx context.Context, userID, projectID, environmentID int64) (string, error) {
	var rank int
	err := s.db.QueryRow(ctx, `SELECT COALESCE(max(`+grantRankSQL+`), 0)
		FROM access_grants g JOIN team_members m ON m.team_id = g.team_id
		WHERE m.user_id = $1 AND ((g.project_id = $2 AND $2 <> 0) OR (g.environment_id = $3 AND $3 <> 0))`,
		userID, projectID, environmentID).Scan(&rank)
	if err != nil {
		return "", fmt.Errorf("access level of user %d: %w", userID, err)
	}
	switch rank {
	case 2:
		return LevelFull, nil
	case 1:
		return LevelRead, nil
	}
	return "", nil
}

// UserGrantLevels returns, in one query, the highest level ("read" or
// "full") any team of the user holds on each project and on each
// environment it has a grant on.
func (s *Store) UserGrantLevels(ctx context.Context, userID int64) (projects, environments map[int64]string, err error) {
	rows, err := s.db.Query(ctx, `SELECT g.project_id, g.environment_id, max(`+grantRankSQL+`)
		FROM access_grants g JOIN team_members m ON m.team_id = g.team_id WHERE m.user_id = $1
		GROUP BY g.project_id, g.environment_id`, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("grant levels of user %d: %w", userID, err)
	}
	defer rows.Close()
	projects, environments = map[int64]string{}, map[int64]string{}
	keep := func(m map[int64]string, id int64, rank int) {
		lvl := LevelRead
		if rank == 2 {
			lvl = LevelFull
		}
		if m[id] != LevelFull {
			m[id] = lvl
		}
	}
	for rows.Next() {
		var p, e *int64
		var rank int
		if err := rows.Scan(&p, &e, &rank); err != nil {
			return nil, nil, fmt.Errorf("grant levels of user %d: %w", userID, err)
		}
		if p != nil {
			keep(projects, *p, rank)
		}
		if e != nil {
			keep(environments, *e, rank)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("grant levels of user %d: %w", userID, err)
	}
	return projects, environments, nil
}

// UserGrantTargets returns the ids of the projects and environments on which
// any team of the user holds a grant (any level), ascending.
func (s *Store) UserGrantTargets(ctx context.Context, userID int64) (projectIDs, environmentIDs []int64, err error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT g.project_id, g.environment_id
		FROM access_grants g JOIN team_members m ON m.team_id = g.team_id WHERE m.user_id = $1
		ORDER BY 1, 2`, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("grant targets of user %d: %w", userID, err)
	}
	defer rows.Close()
	projectIDs, environmentIDs = []int64{}, []int64{}
	for rows.Next() {
		var p, e *int64
		if err := rows.Scan(&p, &e); err != nil {
			return nil, nil, fmt.Errorf("grant targets of user %d: %w", userID, err)
		}
		if p != nil {
			projectIDs = append(projectIDs, *p)
		}
		if e != nil {
			environmentIDs = append(environmentIDs, *e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("grant targets of user %d: %w", userID, err)
	}
	return projectIDs, environmentIDs, nil
}

// VisibleToUserSQL returns an SQL condition that is true when the user bound
// to parameter $n holds a grant (any level) on the project projectExpr or
// on the environment environmentExpr (column expressions such as
// "d.project_id"; pass "" for one that does not apply). Store list queries
// use it to return only what a user may see.
func VisibleToUserSQL(n int, projectExpr, environmentExpr string) string {
	var cond string
	switch {
	case projectExpr != "" && environmentExpr != "":
		cond = "ag.project_id = " + projectExpr + " OR ag.environment_id = " + environmentExpr
	case projectExpr != "":
		cond = "ag.project_id = " + projectExpr
	case environmentExpr != "":
		cond = "ag.environment_id = " + environmentExpr
	default:
		return "FALSE"
	}
	return fmt.Sprintf(`EXISTS (SELECT 1 FROM access_grants ag JOIN team_members tm ON tm.team_id = ag.team_id
		WHERE tm.user_id = $%d AND (%s))`, n, cond)
}
