package e2e

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nullops/nullops/server/config"
)

type usageAnswer struct {
	StepSeconds   int       `json:"step_seconds"`
	WindowSeconds int       `json:"window_seconds"`
	To            time.Time `json:"to"`
	Services      []struct {
		Service string       `json:"service"`
		Points  [][3]float64 `json:"points"`
	} `json:"services"`
}

func usageOf(t *testing.T, c *client, id int64) usageAnswer {
	t.Helper()
	var u usageAnswer
	c.get(fmt.Sprintf("/deployments/%d/usage", id)).want(t, 200).decode(t, &u)
	return u
}

// waitPoints polls the usage history until the service has at least n
// points and returns them.
func waitPoints(t *testing.T, c *client, id int64, svc string, n int, timeout time.Duration) [][3]float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		u := usageOf(t, c, id)
		for _, s := range u.Services {
			if s.Service == svc && len(s.Points) >= n {
				return s.Points
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage history of %s has fewer than %d points after %s: %+v", svc, n, timeout, u)
		}
		time.Sleep(time.Second)
	}
}

// TestUsageHistory: a real agent measuring a real container (pushing every
// second) fills the deployment's usage history at one point per 15 s with
// the container's real memory; users who may read the deployment see it,
// others get 404; the history survives a server restart and grows again once the
// agent is reconnected; deleting the deployment removes it.
func TestUsageHistory(t *testing.T) {
	t.Parallel()
	w := setup(t)
	project := w.newProject(t, "graphs", 0.25, "", webOnlyGraph())
	d := create(t, w.admin, project, w.envID, "graphs", "v1.0.0")
	waitStatus(t, w.admin, d.ID, "running", 180*time.Second)

	pts := waitPoints(t, w.admin, d.ID, "web", 3, 180*time.Second)
	// Pushed every second, kept one per 15 s slot: every point is in a
	// slot of its own. (Counted by the points' own times: samples are
	// recorded while the deployment is still deploying, and a busy
	// machine delays pushes by seconds, so neither the time the test saw
	// "running" nor the gap between two points bounds their number.)
	slots := map[int64]int{}
	for i, p := range pts {
		if p[2] <= 0 {
			t.Errorf("point %d has memory %g: the container's memory was not measured", i, p[2])
		}
		slot := int64(math.Floor(p[0] / 15))
		if j, dup := slots[slot]; dup {
			t.Errorf("points %d and %d (%.1f, %.1f) are in the same 15 s slot: more than one per slot", j, i, pts[j][0], p[0])
		}
		slots[slot] = i
		if i > 0 && p[0] <= pts[i-1][0] {
			t.Errorf("points %d and %d are not in time order: %.1f, %.1f", i-1, i, pts[i-1][0], p[0])
		}
	}

	// Access: as the deployment itself. dev holds a grant on the
	// environment; reader only on another project.
	if got := usageOf(t, w.dev, d.ID); len(got.Services) != 1 || len(got.Services[0].Points) < 3 {
		t.Fatalf("a user with access to the environment sees %+v", got)
	}
	for name, c := range map[string]*client{"reader of another project": w.reader, "user without grants": w.nobody} {
		if r := c.get(fmt.Sprintf("/deployments/%d/usage", d.ID)); r.Status != 404 {
			t.Fatalf("%s: %d %s, want 404", name, r.Status, r.Body)
		}
	}
	if r := w.admin.get(fmt.Sprintf("/deployments/%d/usage?since=yesterday", d.ID)); r.Status != 400 {
		t.Fatalf("a bad since: %d %s, want 400", r.Status, r.Body)
	}
	last := pts[len(pts)-1][0]
	since := time.UnixMilli(int64(last * 1000)).UTC().Format(time.RFC3339Nano)
	var newer usageAnswer
	w.admin.get(fmt.Sprintf("/deployments/%d/usage?since=%s", d.ID, since)).want(t, 200).decode(t, &newer)
	for _, p := range newer.Services[0].Points {
		if p[0] <= last {
			t.Errorf("since=%s returned the older point %v", since, p)
		}
	}

	// A server restart keeps the history; the reconnected agent adds to it.
	before := len(waitPoints(t, w.admin, d.ID, "web", 3, time.Second))
	dbURL := w.srv.App.Config.Database.URL
	w.srv.stop(t)
	w.srv = startServer(t, func(c *config.Config) { c.Database.URL = dbURL })
	w.admin = login(t, w.srv.URL, adminUser, adminPass)
	if got := len(waitPoints(t, w.admin, d.ID, "web", 1, time.Second)); got < before {
		t.Fatalf("after a server restart the history has %d points, had %d", got, before)
	}
	w.waitNode(t, w.nodeID, "online")
	waitPoints(t, w.admin, d.ID, "web", before+1, 180*time.Second)

	// Deleting removes it.
	w.admin.del(fmt.Sprintf("/deployments/%d", d.ID)).want(t, 202)
	waitStatus(t, w.admin, d.ID, "deleted", 120*time.Second)
	if got := usageOf(t, w.admin, d.ID); len(got.Services) != 1 || len(got.Services[0].Points) != 0 {
		t.Fatalf("history of a deleted deployment: %+v", got)
	}
	rows, err := w.srv.App.Store.UsageRows(context.Background(), d.ID)
	if err != nil || len(rows) != 0 {
		t.Fatalf("stored samples of a deleted deployment: %v (%v)", rows, err)
	}
}
