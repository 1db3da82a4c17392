package ingresspub

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/server/store"
)

// Building with the entries of the previous rows gives the same table as
// building from scratch, and reuses the values of unchanged rows.
func TestBuildWithMemoEqualsBuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	statuses := []string{"pending", "deploying", "running", "offline"}
	rows := make([]store.RouteRow, 200)
	for i := range rows {
		rows[i] = store.RouteRow{DeploymentID: int64(i + 1), DeploymentName: fmt.Sprintf("pr-%d", i+1), DeploymentStatus: "running",
			EnvironmentName: "qa", BaseDomain: "example.test", NodeName: "n1", NodeHost: "10.0.0.5", NodeStatus: "online",
			Service: "web", HostPort: 30000 + i}
	}
	var memo map[store.RouteRow]*rowEntry
	for step := range 50 {
		for range rng.IntN(5) + 1 {
			r := &rows[rng.IntN(len(rows))]
			switch rng.IntN(4) {
			case 0:
				r.DeploymentStatus = statuses[rng.IntN(len(statuses))]
			case 1:
				r.HostPort = 30000 + rng.IntN(1000)
			case 2:
				r.DeploymentName = fmt.Sprintf("pr-%d", rng.IntN(300)) // may duplicate a host
			default:
				r.DeploymentName = "Bad_Name!" // host error
			}
		}
		prevMemo := memo
		entries := make([]*rowEntry, len(rows))
		for i, r := range rows {
			entries[i] = prevMemo[r]
		}
		got := build(rows, entries)
		b := dynconfig.NewBuilder(nil, nil)
		memo = map[store.RouteRow]*rowEntry{}
		for i, r := range rows {
			if entries[i] == nil {
				entries[i] = newRowEntry(b, r)
			}
			memo[r] = entries[i]
		}
		want := Build(rows)
		gj, _ := json.Marshal(got.Configuration())
		wj, _ := json.Marshal(want.Configuration())
		if string(gj) != string(wj) || !reflect.DeepEqual(got.Problems, want.Problems) ||
			got.Routed != want.Routed || got.Offline != want.Offline || got.Deploying != want.Deploying {
			t.Fatalf("step %d: memoized build differs", step)
		}
		reused := 0
		for r, e := range memo {
			if prevMemo[r] == e {
				reused++
			}
		}
		if step > 0 && reused < len(rows)-10 {
			t.Fatalf("step %d: only %d of %d entries reused", step, reused, len(rows))
		}
	}
}
