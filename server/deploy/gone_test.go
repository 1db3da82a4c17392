package deploy_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/server/ingresspub"
)

// TestRemovedHostsSayWhyAndWho: the hosts the ingress lists as removed come
// from what the lifecycle records: an expiry by the cleanup job reads
// "expired" by "system", a delete by a user "deleted" by that user, each
// with the time it happened; a live deployment's host is not listed.
func TestRemovedHostsSayWhyAndWho(t *testing.T) {
	f := newFixture(t, 4)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	old := f.create(t, "pr-1", "v1")
	gone := f.create(t, "pr-2", "v1")
	f.create(t, "pr-3", "v1")
	if _, err := f.st.Pool.Exec(ctx, `UPDATE deployments SET expires_at = now() - interval '1 second' WHERE id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.CleanupExpired(ctx); err != nil || n != 1 {
		t.Fatalf("cleanup: %d %v, want 1", n, err)
	}
	if _, err := f.svc.Delete(ctx, f.actor(), gone.ID); err != nil {
		t.Fatal(err)
	}

	pub, err := ingresspub.New(f.st, ingresspub.Options{Log: zerolog.Nop(), GoneRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	body, _, err := pub.Gone(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc dynconfig.GoneDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"web.pr-1.qa.example.test": {"expired", "system"},
		"web.pr-2.qa.example.test": {"deleted", "dev"},
	}
	if len(doc.Hosts) != len(want) {
		t.Fatalf("removed hosts %+v, want %v", doc.Hosts, want)
	}
	for _, h := range doc.Hosts {
		w, ok := want[h.Host]
		if !ok || h.Reason != w[0] || h.By != w[1] || h.At.Before(before) || h.At.After(time.Now()) || h.Deployment == "" || h.DeploymentID == 0 {
			t.Errorf("removed host %+v, want reason %v and a time of now", h, w)
		}
	}

	// Without retention nothing is listed.
	off, _ := ingresspub.New(f.st, ingresspub.Options{Log: zerolog.Nop(), GoneRetention: -1})
	if body, _, err := off.Gone(ctx); err != nil || string(body) != `{"hosts":[]}` {
		t.Errorf("retention off: %s %v", body, err)
	}
}
