package api_test

import (
	"strings"
	"testing"

	"github.com/nullops/nullops/server/api/apitest"
)

func TestEnvironmentCPUOvercommit(t *testing.T) {
	env := apitest.New(t)
	type envOut struct {
		ID            int64   `json:"id"`
		CPUOvercommit float64 `json:"cpu_overcommit"`
	}
	var e envOut
	env.Admin.Post(apitest.Path("/environments"), map[string]any{"name": "qa", "base_domain": "qa.test"}).Want(t, 201).Decode(t, &e)
	if e.CPUOvercommit != 1.5 {
		t.Fatalf("default cpu_overcommit %v, want 1.5", e.CPUOvercommit)
	}
	env.Admin.Put(apitest.Path("/environments/%d", e.ID), map[string]any{"name": "qa", "base_domain": "qa.test", "cpu_overcommit": 2.5}).Want(t, 200).Decode(t, &e)
	env.Admin.Get(apitest.Path("/environments/%d", e.ID)).Want(t, 200).Decode(t, &e)
	if e.CPUOvercommit != 2.5 {
		t.Fatalf("cpu_overcommit %v after PUT, want 2.5", e.CPUOvercommit)
	}
	for _, bad := range []float64{0, 0.5, 10.5, -1} {
		r := env.Admin.Put(apitest.Path("/environments/%d", e.ID), map[string]any{"name": "qa", "base_domain": "qa.test", "cpu_overcommit": bad})
		if r.Status != 400 || !strings.Contains(string(r.Body), "cpu_overcommit") {
			t.Fatalf("cpu_overcommit %v: %d %s", bad, r.Status, r.Body)
		}
	}
}
