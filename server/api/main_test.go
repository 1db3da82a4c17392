package api_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, when the test binary is re-executed as
// BenchmarkDeploymentListHTTP's load generator, only that.
func TestMain(m *testing.M) {
	if spec := os.Getenv(envListLoad); spec != "" {
		listLoadMain(spec)
		return
	}
	os.Exit(m.Run())
}
