package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Team groups users; access grants are given to teams.
type Team struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Members     int       `json:"members"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

const teamColumns = `t.id, t.name, t.description,
	(SELECT count(*) FROM team_members m WHERE m.team_id = t.id), t.created_at, t.updated_at`

func scanTeam(row pgx.Row) (Team, error) {
	var t Team
	if err := row.Scan(&t.ID, &t.Name, &t.Description, &t.Members, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return Team{}, notFound(err)
	}
	return t, nil
}

// CreateTeam inserts a team; a taken name is ErrConflict.
func CreateTeam(ctx context.Context, q Querier, name, description string) (Team, error) {
	t, err := scanTeam(q.QueryRow(ctx, "INSERT INTO teams AS t (name, description) VALUES ($1, $2) RETURNING "+teamColumns, name, description))
	if IsUniqueViolation(err) {
		return Team{}, fmt.Errorf("team %q: %w", name, ErrConflict)
	}
	if err != nil {
		return Team{}, fmt.Errorf("create team: %w", err)
	}
	return t, nil
}

// GetTeam returns a team by id.
func (s *Store) GetTeam(ctx context.Context, id int64) (Team, error) {
	t, err := scanTeam(s.db.QueryRow(ctx, "SELECT "+teamColumns+" FROM teams t WHERE t.id = $1", id))
	if err != nil {
		return Team{}, fmt.Errorf("get team %d: %w", id, err)
	}
	return t, nil
}

// ListTeams pages through teams by name.
func (s *Store) ListTeams(ctx context.Context, limit, offset int) ([]Team, int, error) {
	var total int
	if err := s.db.QueryRow(ctx, "SELECT count(*) FROM teams").Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count teams: %w", err)
	}
	rows, err := s.db.Query(ctx, "SELECT "+teamColumns+" FROM teams t ORDER BY t.name LIMIT $1 OFFSET $2", pageLimit(limit), max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("list teams: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Team, error) { return scanTeam(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("list teams: %w", err)
	}
	return out, total, nil
}

// UserTeams lists the teams a user belongs to.
func (s *Store) UserTeams(ctx context.Context, userID int64) ([]Team, error) {
	rows, err := s.db.Query(ctx, "SELECT "+teamColumns+` FROM teams t
		WHERE t.id IN (SELECT team_id FROM team_members WHERE user_id = $1) ORDER BY t.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("teams of user %d: %w", userID, err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (Team, error) { return scanTeam(r) })
	if err != nil {
		return nil, fmt.Errorf("teams of user %d: %w", userID, err)
	}
	return out, nil
}

// UpdateTeam changes the non-nil fields of a team.
func UpdateTeam(ctx context.Context, q Querier, id int64, name, description *string) (Team, error) {
	t, err := scanTeam(q.QueryRow(ctx, `UPDATE teams AS t SET name = COALESCE($2, t.name),
		description = COALESCE($3, t.description), updated_at = now() WHERE t.id = $1 RETURNING `+teamColumns, id, name, description))
	if IsUniqueViolation(err) {
		return Team{}, fmt.Errorf("team %q: %w", *name, ErrConflict)
	}
	if err != nil {
		return Team{}, fmt.Errorf("update team %d: %w", id, err)
	}
	return t, nil
}

// DeleteTeam removes a team with its memberships and grants.
func DeleteTeam(ctx context.Context, q Querier, id int64) error {
	tag, err := q.Exec(ctx, "DELETE FROM teams WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("delete team %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete team %d: %w", id, ErrNotFound)
	}
	return nil
}

// TeamMember is a user in a team.
type TeamMember struct {
	UserID      int64     `json:"user_id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	AddedAt     time.Time `json:"added_at"`
}

// ListTeamMembers pages through the members of a team by username.
func (s *Store) ListTeamMembers(ctx context.Context, teamID int64, limit, offset int) ([]TeamMember, int, error) {
	var total int
	if err := s.db.QueryRow(ctx, "SELECT count(*) FROM team_members WHERE team_id = $1", teamID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count team members: %w", err)
	}
	rows, err := s.db.Query(ctx, `SELECT u.id, u.username, u.display_name, m.created_at
		FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = $1
		ORDER BY u.username LIMIT $2 OFFSET $3`, teamID, pageLimit(limit), max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("list team members: %w", err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (TeamMember, error) {
		var m TeamMember
		return m, r.Scan(&m.UserID, &m.Username, &m.DisplayName, &m.AddedAt)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list team members: %w", err)
	}
	return out, total, nil
}

// AddTeamMember adds a user to a team; adding twice is not an error. A
// missing team or user is ErrNotFound.
func AddTeamMember(ctx context.Context, q Querier, teamID, userID int64) error {
	_, err := q.Exec(ctx, "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", teamID, userID)
	if IsForeignKeyViolation(err) {
		return fmt.Errorf("add member %d to team %d: %w", userID, teamID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add member %d to team %d: %w", userID, teamID, err)
	}
	return nil
}

// RemoveTeamMember removes a user from a team (ErrNotFound if not a member).
func RemoveTeamMember(ctx context.Context, q Querier, teamID, userID int64) error {
	tag, err := q.Exec(ctx, "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2", teamID, userID)
	if err != nil {
		return fmt.Errorf("remove member %d from team %d: %w", userID, teamID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("remove member %d from team %d: %w", userID, teamID, ErrNotFound)
	}
	return nil
}
