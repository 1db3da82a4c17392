// Package singleton runs a periodic job on one server replica at a time:
// every replica runs a Runner for the job, and only the one holding the
// job's PostgreSQL lock runs it (see docs/high-availability.md,
// Singletons). When the holder stops, dies or freezes, the lock passes to
// another replica, which starts the job at once.
package singleton

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/server/store"
)

// DefaultLease is how long a frozen holder keeps a job: PostgreSQL ends
// its session once it has been silent this long.
const DefaultLease = 10 * time.Second

// Options configure a Runner.
type Options struct {
	Store *store.Store
	Log   zerolog.Logger
	// Lease: see DefaultLease (0 = default). Heartbeats go every Lease/4.
	Lease time.Duration
	// Holder names this process in pg_stat_activity (default pid@host).
	Holder string
}

// Runner runs one job while it holds the job's lock.
type Runner struct {
	name string
	opts Options
	job  func(ctx context.Context)
	log  zerolog.Logger

	mu       sync.Mutex
	holding  bool
	acquired int64         // times the lock was taken
	changed  chan struct{} // closed and replaced when holding changes
}

// New returns a runner of job under name; job must return when its ctx
// ends (the lock is lost or the runner stops).
func New(name string, opts Options, job func(ctx context.Context)) *Runner {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("%d@%s", os.Getpid(), host)
	}
	return &Runner{name: name, opts: opts, job: job, changed: make(chan struct{}),
		log: opts.Log.With().Str("part", "singleton").Str("job", name).Logger()}
}

// Holding reports whether this runner holds the job now, and a channel
// closed at the next change.
func (r *Runner) Holding() (bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.holding, r.changed
}

// Acquired is how many times this runner took the lock.
func (r *Runner) Acquired() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acquired
}

func (r *Runner) set(h bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holding = h
	if h {
		r.acquired++
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// Run waits for the lock, runs the job while it holds it, and starts over
// when it is lost, until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		l, err := r.opts.Store.WaitJobLock(ctx, r.name, r.opts.Holder, r.opts.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn().Err(err).Dur("retry_in", backoff).Msg("singleton job lock")
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		r.hold(ctx, l)
	}
}

// hold runs the job until ctx ends or a heartbeat fails, then releases.
func (r *Runner) hold(ctx context.Context, l *store.JobLock) {
	r.log.Info().Msg("this replica runs the job")
	jobCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	r.set(true)
	go func() {
		defer close(done)
		r.job(jobCtx)
	}()
	t := time.NewTicker(r.opts.Lease / 4)
	for {
		select {
		case <-ctx.Done():
		case <-done:
			// The job ended by itself: keep the lock (another replica
			// would only run it again) until ctx ends.
			<-ctx.Done()
		case <-t.C:
			hctx, cancel := context.WithTimeout(ctx, r.opts.Lease/2)
			err := l.Heartbeat(hctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				continue
			}
			r.log.Warn().Err(err).Msg("lost the job lock; stopping the job here")
		}
		break
	}
	t.Stop()
	stop()
	<-done
	l.Release(context.WithoutCancel(ctx))
	r.set(false)
}
