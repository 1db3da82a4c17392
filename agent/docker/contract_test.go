package docker

import (
	"testing"

	"github.com/nullops/nullops/agent/runtime"
	"github.com/nullops/nullops/agent/runtime/runtimetest"
)

// TestRuntimeContract: the Docker runtime keeps the promises of
// agent/runtime's doc comments.
func TestRuntimeContract(t *testing.T) {
	t.Parallel()
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t testing.TB, node string) runtime.Runtime {
			r, err := New(Config{Node: node, SubnetPool: "10.221.0.0/16"})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	})
}
