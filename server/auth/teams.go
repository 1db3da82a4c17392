package auth

import (
	"context"

	"github.com/nullops/nullops/server/store"
)

// Teams, memberships and grants: each write and its audit entry commit
// together or not at all.

// CreateTeam validates (errs.Fields; the name is required), inserts a team
// and records team.create by a; a taken name is a conflict naming the
// field (errors.Is store.ErrConflict).
func (s *Service) CreateTeam(ctx context.Context, a store.Actor, in TeamInput) (store.Team, error) {
	if err := in.check(true); err != nil {
		return store.Team{}, err
	}
	desc := ""
	if in.Description != nil {
		desc = *in.Description
	}
	var t store.Team
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if t, err = store.CreateTeam(ctx, tx, *in.Name, desc); err != nil {
			return teamTaken(err, in.Name)
		}
		return tx.Audit(ctx, a.Entry("team.create", "team", t.ID, map[string]any{"name": t.Name}))
	})
	return t, err
}

// UpdateTeam validates and changes the non-nil fields of a team and
// records team.update.
func (s *Service) UpdateTeam(ctx context.Context, a store.Actor, id int64, in TeamInput) (store.Team, error) {
	if err := in.check(false); err != nil {
		return store.Team{}, err
	}
	var t store.Team
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if t, err = store.UpdateTeam(ctx, tx, id, in.Name, in.Description); err != nil {
			return teamTaken(err, in.Name)
		}
		return tx.Audit(ctx, a.Entry("team.update", "team", t.ID, map[string]any{"name": in.Name, "description": in.Description}))
	})
	return t, err
}

// DeleteTeam removes a team with its memberships and grants and records
// team.delete.
func (s *Service) DeleteTeam(ctx context.Context, a store.Actor, id int64) error {
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		t, err := tx.GetTeam(ctx, id)
		if err != nil {
			return err
		}
		if err := store.DeleteTeam(ctx, tx, id); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("team.delete", "team", id, map[string]any{"name": t.Name}))
	})
}

// AddTeamMember adds a user to a team (again is fine) and records
// team.member_add.
func (s *Service) AddTeamMember(ctx context.Context, a store.Actor, teamID, userID int64) error {
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		if err := store.AddTeamMember(ctx, tx, teamID, userID); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("team.member_add", "team", teamID, map[string]any{"user_id": userID}))
	})
}

// RemoveTeamMember removes a user from a team and records
// team.member_remove (store.ErrNotFound when not a member).
func (s *Service) RemoveTeamMember(ctx context.Context, a store.Actor, teamID, userID int64) error {
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		if err := store.RemoveTeamMember(ctx, tx, teamID, userID); err != nil {
			return err
		}
		return tx.Audit(ctx, a.Entry("team.member_remove", "team", teamID, map[string]any{"user_id": userID}))
	})
}

// PutGrant sets a team's level ("read" or "full", else errs.Fields) on a
// project or environment and records access.put, visible to whoever sees
// that project or environment.
func (s *Service) PutGrant(ctx context.Context, a store.Actor, scope store.GrantScope, teamID int64, levelName string) (store.Grant, error) {
	level, err := parseLevel(levelName)
	if err != nil {
		return store.Grant{}, err
	}
	var g store.Grant
	err = s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if g, err = store.PutGrant(ctx, tx, scope, teamID, level.String()); err != nil {
			return err
		}
		return tx.Audit(ctx, scopedEntry(a, scope, "access.put", map[string]any{"team_id": teamID, "team": g.TeamName, "level": g.Level}))
	})
	return g, err
}

// DeleteGrant removes a team's grant on a project or environment and
// records access.delete.
func (s *Service) DeleteGrant(ctx context.Context, a store.Actor, scope store.GrantScope, teamID int64) error {
	return s.Store.InTx(ctx, func(tx *store.Store) error {
		if err := store.DeleteGrant(ctx, tx, scope, teamID); err != nil {
			return err
		}
		return tx.Audit(ctx, scopedEntry(a, scope, "access.delete", map[string]any{"team_id": teamID}))
	})
}

// scopedEntry is an access change on scope, with its project or environment
// set so users who can see it see the entry.
func scopedEntry(a store.Actor, scope store.GrantScope, action string, detail any) store.AuditEntry {
	e := a.Entry(action, scope.Kind, scope.ID, detail)
	id := scope.ID
	if scope.Kind == store.ScopeProject {
		e.ProjectID = &id
	} else {
		e.EnvironmentID = &id
	}
	return e
}
