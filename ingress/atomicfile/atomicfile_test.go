package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nullops/nullops/internal/testutil"
)

// TestWriteViaLeavesTheWatchedDirectoryAlone watches the target's directory
// with inotify, as Traefik's file provider does, and checks that replacing
// the file through another directory shows only the target's own name there.
func TestWriteViaLeavesTheWatchedDirectoryAlone(t *testing.T) {
	root := t.TempDir()
	watched := filepath.Join(root, "dynamic")
	if err := os.Mkdir(watched, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(watched, "nullops.yml")
	if err := Write(target, []byte("old")); err != nil {
		t.Fatal(err)
	}

	watch := testutil.WatchDir(t, watched)

	for i := 0; i < 3; i++ {
		if err := WriteVia(target, root, []byte("new")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(target)
	if err != nil || string(got) != "new" {
		t.Fatalf("target holds %q (%v), want new", got, err)
	}
	names := watch.Names(t)
	if len(names) == 0 {
		t.Fatal("no inotify event for the replaced file at all")
	}
	for _, n := range names {
		if n != "nullops.yml" {
			t.Errorf("the watched directory saw %q; only the target may appear there", n)
		}
	}
	left, _ := os.ReadDir(root)
	for _, e := range left {
		if e.Name() != "dynamic" {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	// Write (no other directory) still works and leaves nothing behind.
	if err := Write(target, []byte("again")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(watched)
	if len(entries) != 1 {
		t.Errorf("watched directory holds %d entries, want only the target", len(entries))
	}
}
