package main

import (
	"os"
	"testing"

	"github.com/nullops/nullops/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.RemoveGoBinaries()
	os.Exit(code)
}
