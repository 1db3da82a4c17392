package auth_test

import (
	"context"
	"testing"

	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestLevelsAgreeWithLevel: the levels loaded once for a list give, for
// every project/environment pair, what the per-resource check answers.
func TestLevelsAgreeWithLevel(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	id := func(sql string, args ...any) int64 {
		var v int64
		if err := st.Pool.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return v
	}
	ps := []int64{0, id(`INSERT INTO projects (name) VALUES ('p1') RETURNING id`), id(`INSERT INTO projects (name) VALUES ('p2') RETURNING id`), id(`INSERT INTO projects (name) VALUES ('p3') RETURNING id`)}
	es := []int64{0, id(`INSERT INTO environments (name, base_domain) VALUES ('e1', 'x.test') RETURNING id`), id(`INSERT INTO environments (name, base_domain) VALUES ('e2', 'x.test') RETURNING id`)}
	u := id(`INSERT INTO users (username, password_hash, role) VALUES ('u', 'x', 'user') RETURNING id`)
	team := func(name string) int64 {
		tm, err := store.CreateTeam(ctx, st.Pool, name, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := store.AddTeamMember(ctx, st.Pool, tm.ID, u); err != nil {
			t.Fatal(err)
		}
		return tm.ID
	}
	t1, t2 := team("a"), team("b")
	grant := func(tm int64, kind string, target int64, lvl string) {
		if _, err := store.PutGrant(ctx, st.Pool, store.GrantScope{Kind: kind, ID: target}, tm, lvl); err != nil {
			t.Fatal(err)
		}
	}
	grant(t1, store.ScopeProject, ps[1], store.LevelRead)
	grant(t2, store.ScopeProject, ps[1], store.LevelFull) // two teams: the higher wins
	grant(t1, store.ScopeProject, ps[2], store.LevelRead)
	grant(t1, store.ScopeEnvironment, es[1], store.LevelFull)
	grant(t2, store.ScopeEnvironment, es[2], store.LevelRead)

	a := &auth.Authorizer{Store: st}
	for _, p := range []*auth.Principal{nil, {UserID: u, Username: "u"}, {UserID: u, Admin: true}, {UserID: u + 100}} {
		lv, err := a.Levels(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range ps {
			for _, eid := range es {
				want, err := a.Level(ctx, p, pid, eid)
				if err != nil {
					t.Fatal(err)
				}
				if got := lv.Of(pid, eid); got != want {
					t.Errorf("principal %+v on project %d / environment %d: Levels says %v, Level says %v", p, pid, eid, got, want)
				}
			}
		}
	}
}
