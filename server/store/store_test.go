package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// TestConcurrentMigratorsSerialise starts two migrators on an empty database
// at once: both must succeed and the schema must end at the latest version.
func TestConcurrentMigratorsSerialise(t *testing.T) {
	url := storetest.NewDatabase(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = store.Migrate(ctx, url)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
	}
	s, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("schema not ready after concurrent migrations: %v", err)
	}
	// The default Docker Hub registry row exists exactly once.
	var n int
	if err := s.Pool.QueryRow(ctx, "SELECT count(*) FROM registries WHERE is_default").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("default registries: got %d, want 1", n)
	}
}

// TestMigrationLockIsHeld shows the advisory lock is what serialises
// migrators: while another session holds it, Migrate waits.
func TestMigrationLockIsHeld(t *testing.T) {
	url := storetest.NewDatabase(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	holder, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", store.MigrationLockKey); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- store.Migrate(ctx, url) }()
	select {
	case err := <-done:
		t.Fatalf("Migrate finished while the lock was held (err=%v)", err)
	case <-time.After(700 * time.Millisecond):
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", store.MigrationLockKey); err != nil {
		t.Fatal(err)
	}
	conn.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Migrate after unlock: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Migrate did not finish after the lock was released")
	}
}

func TestReadyFailsOnEmptyDatabase(t *testing.T) {
	url := storetest.NewDatabase(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready succeeded on a database without migrations")
	}
}
