// Package changefeed is the server's one PostgreSQL LISTEN connection
// (docs/architecture.md, "Change feed"). Changes are announced with NOTIFY
// inside the transaction that makes them, so they are delivered when, and
// only if, it commits. A Feed owns the single listening connection,
// reconnects when it is lost, signals readiness, and fans every
// notification out to the subscribers of its channel, in commit order.
//
// Notifications sent while no connection listens are lost; that is why
// every subscriber has a Resync, called each time the LISTEN is
// (re)established, before any notification of that connection: the
// subscriber reloads what it derives from the database.
package changefeed

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"
)

var (
	metricConnected = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "nullops_changefeed_listening",
		Help: "1 while the change feed's LISTEN connection is in place, else 0.",
	})
	metricConnects = promauto.NewCounter(prometheus.CounterOpts{
		Name: "nullops_changefeed_connects_total",
		Help: "LISTEN connections established by the change feed (the first one and every reconnect).",
	})
	metricNotifications = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "nullops_changefeed_notifications_total",
		Help: "Notifications received by the change feed, by channel.",
	}, []string{"channel"})
)

// Listener holds one LISTEN connection on channels: it calls listening once
// every LISTEN is in place, then fn for each notification, until ctx ends or
// the connection fails (server/store implements it).
type Listener interface {
	Listen(ctx context.Context, channels []string, listening func(), fn func(channel, payload string)) error
}

// Handler is one subscriber of a channel. Both functions run on the feed's
// goroutine, in order with every other subscriber's: they must not block
// (hand the work to a goroutine or a buffered channel).
type Handler struct {
	// Notify is called with the payload of every notification on the
	// channel, in commit order.
	Notify func(payload string)
	// Resync (optional) is called each time the LISTEN is (re)established,
	// before the first notification of the new connection: whatever was
	// committed meanwhile was not announced.
	Resync func()
}

// Options configure a Feed.
type Options struct {
	// Channels are LISTENed to; Subscribe accepts only these.
	Channels []string
	Log      zerolog.Logger
	// BackoffMin and BackoffMax bound the wait between reconnection
	// attempts (defaults 100 ms and 10 s); it doubles after each failure
	// and starts over after a connection that lasted a minute.
	BackoffMin, BackoffMax time.Duration
}

// Feed fans the notifications of one LISTEN connection out to subscribers.
type Feed struct {
	l    Listener
	opts Options
	log  zerolog.Logger

	mu       sync.RWMutex
	subs     map[string][]*subscription
	ready    chan struct{} // closed at the first LISTEN
	connect  chan struct{} // closed and replaced at every LISTEN
	running  bool
	connects atomic.Int64
	up       atomic.Bool
}

type subscription struct{ h Handler }

// New returns a feed; subscribe, then call Run.
func New(l Listener, o Options) *Feed {
	if o.BackoffMin <= 0 {
		o.BackoffMin = 100 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(10*time.Second, o.BackoffMin)
	}
	o.Channels = slices.Clone(o.Channels)
	return &Feed{l: l, opts: o, log: o.Log.With().Str("part", "changefeed").Logger(),
		subs: map[string][]*subscription{}, ready: make(chan struct{}), connect: make(chan struct{})}
}

// Listens reports whether channel is one of Options.Channels.
func (f *Feed) Listens(channel string) bool { return slices.Contains(f.opts.Channels, channel) }

// Subscribe adds h to the subscribers of channel, which must be one of
// Options.Channels (anything else is a programming error and panics). A
// subscriber added while the feed is already listening gets no Resync for
// the current connection: it loads its initial state itself after
// subscribing. The returned function removes the subscription.
func (f *Feed) Subscribe(channel string, h Handler) (unsubscribe func()) {
	if !slices.Contains(f.opts.Channels, channel) {
		panic(fmt.Sprintf("changefeed: subscription to %q, which the feed does not listen to", channel))
	}
	if h.Notify == nil {
		h.Notify = func(string) {}
	}
	s := &subscription{h: h}
	f.mu.Lock()
	f.subs[channel] = append(f.subs[channel], s)
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		// A new slice: dispatch may be ranging over the old one.
		f.subs[channel] = slices.DeleteFunc(slices.Clone(f.subs[channel]), func(x *subscription) bool { return x == s })
	}
}

// Ready is closed once the first LISTEN is in place: from then on every
// committed change is delivered (consumers and tests wait on it instead of
// sleeping).
func (f *Feed) Ready() <-chan struct{} { return f.ready }

// Listening reports whether the LISTEN connection is in place now.
func (f *Feed) Listening() bool { return f.up.Load() }

// Connects is how many times the LISTEN was established (1 after the first
// connection, +1 for each reconnect).
func (f *Feed) Connects() int64 { return f.connects.Load() }

// WaitConnects blocks until the LISTEN was established at least n times in
// all, or ctx ends.
func (f *Feed) WaitConnects(ctx context.Context, n int64) error {
	for {
		f.mu.RLock()
		ch := f.connect
		f.mu.RUnlock()
		if f.connects.Load() >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("change feed: %d LISTEN connections, waiting for %d: %w", f.connects.Load(), n, ctx.Err())
		}
	}
}

// Run keeps the LISTEN connection until ctx ends, reconnecting with capped
// exponential backoff when it is lost. Call it once.
func (f *Feed) Run(ctx context.Context) {
	f.mu.Lock()
	if f.running {
		f.mu.Unlock()
		panic("changefeed: Run called twice")
	}
	f.running = true
	f.mu.Unlock()
	backoff := f.opts.BackoffMin
	for ctx.Err() == nil {
		var since time.Time
		err := f.l.Listen(ctx, f.opts.Channels, func() {
			since = time.Now()
			f.listening()
		}, f.dispatch)
		if f.up.Swap(false) {
			metricConnected.Set(0)
		}
		if ctx.Err() != nil {
			return
		}
		if !since.IsZero() && time.Since(since) > time.Minute {
			backoff = f.opts.BackoffMin
		}
		f.log.Warn().Err(err).Dur("retry_in", backoff).Msg("change feed lost its LISTEN connection; reconnecting")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, f.opts.BackoffMax)
	}
}

// listening runs once per connection, after every LISTEN is in place and
// before its first notification.
func (f *Feed) listening() {
	f.up.Store(true)
	metricConnected.Set(1)
	metricConnects.Inc()
	n := f.connects.Add(1)
	if n > 1 {
		f.log.Info().Int64("connects", n).Msg("change feed listening again; subscribers resynchronize")
	}
	f.mu.RLock()
	var all []*subscription
	for _, ch := range f.opts.Channels {
		all = append(all, f.subs[ch]...)
	}
	f.mu.RUnlock()
	for _, s := range all {
		if s.h.Resync != nil {
			s.h.Resync()
		}
	}
	f.mu.Lock()
	if n == 1 {
		close(f.ready)
	}
	close(f.connect)
	f.connect = make(chan struct{})
	f.mu.Unlock()
}

func (f *Feed) dispatch(channel, payload string) {
	metricNotifications.WithLabelValues(channel).Inc()
	f.mu.RLock()
	subs := f.subs[channel]
	f.mu.RUnlock()
	// subs is never modified in place (Subscribe appends past its length,
	// unsubscribe builds a new slice), so it is safe to range over without
	// the lock.
	for _, s := range subs {
		s.h.Notify(payload)
	}
}
