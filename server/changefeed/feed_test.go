package changefeed_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// recorder is a subscriber that records what it was given.
type recorder struct {
	mu       sync.Mutex
	payloads []string
	resyncs  int
	seen     chan string
}

func newRecorder() *recorder { return &recorder{seen: make(chan string, 100)} }

func (r *recorder) handler() changefeed.Handler {
	return changefeed.Handler{
		Notify: func(p string) {
			r.mu.Lock()
			r.payloads = append(r.payloads, p)
			r.mu.Unlock()
			r.seen <- p
		},
		Resync: func() {
			r.mu.Lock()
			r.resyncs++
			r.mu.Unlock()
		},
	}
}

func (r *recorder) got() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.payloads...), r.resyncs
}

// waitFor reads the subscriber's notifications until want arrives.
func (r *recorder) waitFor(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	for {
		select {
		case p := <-r.seen:
			if p == want {
				return
			}
		case <-ctx.Done():
			got, _ := r.got()
			t.Fatalf("notification %q not delivered; got %q", want, got)
		}
	}
}

func notify(t *testing.T, st *store.Store, channel, payload string) {
	t.Helper()
	if _, err := st.Pool.Exec(context.Background(), "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		t.Fatal(err)
	}
}

// listeners counts the change feed's LISTEN connections to this database.
func listeners(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	if err := st.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, store.ListenerApplicationName).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func start(t *testing.T, f *changefeed.Feed) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-f.Ready():
	case <-time.After(2 * time.Minute):
		t.Fatal("the change feed did not start listening")
	}
}

// One connection serves every channel; each subscriber gets its channel's
// notifications once, in commit order, and nothing of a rolled-back
// transaction.
func TestFeedFansOutInCommitOrder(t *testing.T) {
	st := storetest.New(t)
	ctx := testutil.Context(t, 3*time.Minute)
	f := changefeed.New(st, changefeed.Options{Channels: []string{"feed_a", "feed_b"}, Log: zerolog.Nop()})
	a1, a2, b := newRecorder(), newRecorder(), newRecorder()
	f.Subscribe("feed_a", a1.handler())
	f.Subscribe("feed_a", a2.handler())
	f.Subscribe("feed_b", b.handler())
	start(t, f)
	if n := listeners(t, st); n != 1 {
		t.Fatalf("%d LISTEN connections for 2 channels and 3 subscribers, want 1", n)
	}

	tx, err := st.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify('feed_a', 'rolled back')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		notify(t, st, "feed_a", fmt.Sprint("a", i))
		notify(t, st, "feed_b", fmt.Sprint("b", i))
	}
	a1.waitFor(t, ctx, "a4")
	a2.waitFor(t, ctx, "a4")
	b.waitFor(t, ctx, "b4")
	want := "[a0 a1 a2 a3 a4]"
	for _, r := range []*recorder{a1, a2} {
		if got, resyncs := r.got(); fmt.Sprint(got) != want || resyncs != 1 {
			t.Errorf("subscriber of feed_a got %v and %d resyncs, want %s and 1", got, resyncs, want)
		}
	}
	if got, _ := b.got(); fmt.Sprint(got) != "[b0 b1 b2 b3 b4]" {
		t.Errorf("subscriber of feed_b got %v", got)
	}
	if f.Connects() != 1 || !f.Listening() {
		t.Errorf("connects %d listening %v, want 1 and true", f.Connects(), f.Listening())
	}
}

// A killed LISTEN connection is replaced; subscribers resynchronize before
// the first notification of the new connection, and the feed keeps one
// connection.
func TestFeedReconnectsAfterItsConnectionIsKilled(t *testing.T) {
	st := storetest.New(t)
	ctx := testutil.Context(t, 3*time.Minute)
	f := changefeed.New(st, changefeed.Options{Channels: []string{"feed_a"}, Log: zerolog.Nop(),
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	r := newRecorder()
	unsubscribe := f.Subscribe("feed_a", r.handler())
	start(t, f)
	notify(t, st, "feed_a", "before")
	r.waitFor(t, ctx, "before")

	for kill := 1; kill <= 3; kill++ {
		var killed int
		if err := st.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, store.ListenerApplicationName).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("terminated %d listening backends, want 1", killed)
		}
		if err := f.WaitConnects(ctx, int64(kill+1)); err != nil {
			t.Fatal(err)
		}
		payload := fmt.Sprint("after kill ", kill)
		notify(t, st, "feed_a", payload)
		r.waitFor(t, ctx, payload)
		if _, resyncs := r.got(); resyncs != kill+1 {
			t.Fatalf("after kill %d: %d resyncs, want %d (one per LISTEN)", kill, resyncs, kill+1)
		}
		if n := listeners(t, st); n != 1 {
			t.Fatalf("after kill %d: %d LISTEN connections, want 1", kill, n)
		}
	}
	got, _ := r.got()
	if fmt.Sprint(got) != "[before after kill 1 after kill 2 after kill 3]" {
		t.Fatalf("notifications %q", got)
	}

	// Unsubscribed: nothing more arrives (a second subscriber proves the
	// notification was delivered).
	unsubscribe()
	other := newRecorder()
	f.Subscribe("feed_a", other.handler())
	notify(t, st, "feed_a", "last")
	other.waitFor(t, ctx, "last")
	if got, _ := r.got(); len(got) != 4 {
		t.Fatalf("an unsubscribed handler got %q", got)
	}
}

func TestSubscribingToAnUnknownChannelPanics(t *testing.T) {
	f := changefeed.New(nil, changefeed.Options{Channels: []string{"feed_a"}})
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	f.Subscribe("feed_b", changefeed.Handler{})
}
