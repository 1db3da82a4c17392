package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

func mustID(t *testing.T, st *store.Store, q string, args ...any) int64 {
	t.Helper()
	var id int64
	if err := st.Pool.QueryRow(context.Background(), q, args...).Scan(&id); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return id
}

func TestUserGrantLevelIsTheHighestOverTeamsAndScopes(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	p1 := mustID(t, st, "INSERT INTO projects (name) VALUES ('p1') RETURNING id")
	p2 := mustID(t, st, "INSERT INTO projects (name) VALUES ('p2') RETURNING id")
	e1 := mustID(t, st, "INSERT INTO environments (name, base_domain) VALUES ('e1', 'e1.test') RETURNING id")
	e2 := mustID(t, st, "INSERT INTO environments (name, base_domain) VALUES ('e2', 'e2.test') RETURNING id")
	u, err := store.CreateUser(ctx, st.Pool, store.NewUser{Username: "u", PasswordHash: "x", Role: store.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := store.CreateUser(ctx, st.Pool, store.NewUser{Username: "o", PasswordHash: "x", Role: store.RoleUser})
	ta, _ := store.CreateTeam(ctx, st.Pool, "a", "")
	tb, _ := store.CreateTeam(ctx, st.Pool, "b", "")
	tc, _ := store.CreateTeam(ctx, st.Pool, "c", "")
	for _, m := range [][2]int64{{ta.ID, u.ID}, {tb.ID, u.ID}, {tc.ID, other.ID}} {
		if err := store.AddTeamMember(ctx, st.Pool, m[0], m[1]); err != nil {
			t.Fatal(err)
		}
	}
	grant := func(team int64, kind string, id int64, level string) {
		t.Helper()
		if _, err := store.PutGrant(ctx, st.Pool, store.GrantScope{Kind: kind, ID: id}, team, level); err != nil {
			t.Fatal(err)
		}
	}
	grant(ta.ID, store.ScopeProject, p1, store.LevelRead)
	grant(tb.ID, store.ScopeProject, p1, store.LevelFull)
	grant(ta.ID, store.ScopeEnvironment, e1, store.LevelRead)
	grant(tc.ID, store.ScopeProject, p2, store.LevelFull) // not u's team

	for _, c := range []struct {
		p, e int64
		want string
	}{
		{p1, 0, "full"}, {p1, e1, "full"}, {p1, e2, "full"}, {p2, e1, "read"}, {0, e1, "read"},
		{p2, 0, ""}, {p2, e2, ""}, {0, e2, ""}, {0, 0, ""},
	} {
		got, err := st.UserGrantLevel(ctx, u.ID, c.p, c.e)
		if err != nil || got != c.want {
			t.Errorf("level on project %d env %d: %q %v, want %q", c.p, c.e, got, err, c.want)
		}
	}
	pids, eids, err := st.UserGrantTargets(ctx, u.ID)
	if err != nil || !slices.Equal(pids, []int64{p1}) || !slices.Equal(eids, []int64{e1}) {
		t.Fatalf("targets %v %v %v", pids, eids, err)
	}
	// Upsert replaces the level; deleting removes it.
	grant(tb.ID, store.ScopeProject, p1, store.LevelRead)
	if got, _ := st.UserGrantLevel(ctx, u.ID, p1, 0); got != "read" {
		t.Errorf("after downgrade: %q", got)
	}
	if err := store.DeleteGrant(ctx, st.Pool, store.GrantScope{Kind: store.ScopeProject, ID: p1}, ta.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteGrant(ctx, st.Pool, store.GrantScope{Kind: store.ScopeProject, ID: p1}, tb.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.UserGrantLevel(ctx, u.ID, p1, 0); got != "" {
		t.Errorf("after deleting both grants: %q", got)
	}
	if _, err := store.PutGrant(ctx, st.Pool, store.GrantScope{Kind: "node", ID: 1}, ta.ID, "read"); err == nil {
		t.Error("grant on an unknown scope accepted")
	}

	// Audit visibility uses the same rule.
	for _, e := range []store.AuditEntry{
		{Action: "x.p1", ProjectID: &p1},
		{Action: "x.e1", EnvironmentID: &e1},
		{Action: "x.p2e1", ProjectID: &p2, EnvironmentID: &e1},
		{Action: "x.p2", ProjectID: &p2},
		{Action: "x.none"},
	} {
		if err := store.RecordAudit(ctx, st.Pool, e); err != nil {
			t.Fatal(err)
		}
	}
	entries, total, err := st.ListAudit(ctx, store.AuditFilter{VisibleTo: &u.ID, Action: "x.*"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Action)
	}
	if total != 2 || !slices.Equal(got, []string{"x.p2e1", "x.e1"}) {
		t.Errorf("u sees %v (total %d), want [x.p2e1 x.e1] (p1 grants were deleted)", got, total)
	}
	if _, total, _ := st.ListAudit(ctx, store.AuditFilter{Action: "x.*"}); total != 5 {
		t.Errorf("unrestricted: %d, want 5", total)
	}
	if _, total, _ := st.ListAudit(ctx, store.AuditFilter{Action: "x.p_"}); total != 0 {
		t.Errorf("exact action filter matched a LIKE pattern: %d", total)
	}
}
