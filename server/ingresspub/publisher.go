// Package ingresspub derives the ingress route table from the database and
// publishes it as a Traefik dynamic configuration (ingress/dynconfig):
// versioned snapshots with a content ETag, long-poll waiting for the next
// version, and an optional atomically written file for Traefik's file
// provider.
//
// A route exists for every ingress-exposed service of a deployment that is
// running with a published port (also while its node is briefly
// unreachable: the deployment turns offline only after a grace period);
// deployments still being deployed, and offline ones, get a host that
// answers 503 (dynconfig.ServiceDeploying / dynconfig.ServiceOffline).
//
// Derivation is triggered by the change feed (server/changefeed): the
// triggers of migrations 000006 and 000030 NOTIFY nullops_routes in every
// transaction that changes something a route depends on, whichever server
// instance made it, naming the deployment, node or environment, so each
// committed change reaches the publisher once and it derives only the
// routes of the deployments concerned (see table). A reconnection of the
// feed, Changed and a slow periodic recheck derive the whole table. Bursts
// coalesce: at most one derivation runs and at most one more is queued.
package ingresspub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/atomicfile"
	"github.com/nullops/nullops/ingress/dynconfig"
	"github.com/nullops/nullops/server/changefeed"
	"github.com/nullops/nullops/server/errs"
	"github.com/nullops/nullops/server/store"
)

var (
	metricRoutes = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "nullops_routes_published",
		Help: "Hosts in the published ingress route table, by state (routed, offline, deploying).",
	}, []string{"state"})
	metricVersion = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "nullops_routes_version",
		Help: "Version of the published ingress configuration (bumped on every change).",
	})
	metricRecompute = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "nullops_routes_recompute_seconds",
		Help:    "Time to derive and render the ingress route table.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
)

// Options configure a Publisher.
type Options struct {
	// File, when set, receives every new version, written atomically
	// (temporary file + rename), for Traefik's file provider. The content is
	// JSON, which is also valid YAML: name it *.yaml, *.yml or *.json.
	File string
	// FileTempDir is where the next version of File is prepared (default:
	// the parent of File's directory, outside what Traefik watches).
	FileTempDir string
	// Recheck is the period of the safety-net recompute (default 1 minute).
	Recheck time.Duration
	// History is how many versions keep their delta, so that an ingress
	// that is up to N versions behind gets a delta instead of the whole
	// document (default 128).
	History int
	// WithdrawGrace is how long Withdraw waits for ingresses that cannot
	// confirm a table (Traefik polling or reading File); ConfirmTimeout how
	// long at most for nullops-ingress confirmations.
	WithdrawGrace  time.Duration
	ConfirmTimeout time.Duration
	// GoneRetention is how long the hosts of deleted and expired
	// deployments are listed for nullops-ingress (see Gone; 0 = the
	// default, negative = not at all).
	GoneRetention time.Duration
	Log           zerolog.Logger
}

// Snapshot is one published version of the route table.
type Snapshot struct {
	Version int64
	// ETag is the quoted strong ETag of the table: its content hash
	// (dynconfig.State.ETag), which the ingress can compute too.
	ETag       string
	Routed     int // hosts routed to a backend
	Offline    int // hosts answering 503: node offline
	Deploying  int // hosts answering 503: still being deployed
	Problems   []string
	ComputedAt time.Time

	// The table (see Configuration): config, or, until asked for, the
	// table of base (a snapshot with config) and the deltas since it.
	cfgOnce sync.Once
	config  *dynconfig.Configuration
	base    *Snapshot
	since   []*dynconfig.Delta
	entries int // routers and services in the table

	// delta turns the previous version into this one (nil for the first
	// version of this publisher); deltaBody is it encoded.
	delta     *dynconfig.Delta
	deltaBody []byte

	bodyOnce sync.Once
	body     []byte // the Traefik dynamic configuration, JSON, rendered on first use
	bodyErr  error

	variantsMu sync.Mutex
	variants   map[string]rendered // Render's results by Variant.key
	merged     map[int64][]byte    // encoded deltas to this version by base version
}

// snapshotChain bounds the deltas a snapshot's table is kept as (see
// Configuration): every snapshotChain-th version derived by id copies the
// whole table, the others only reference the delta that made them.
const snapshotChain = 32

// Configuration is the table of this version; never modify it. A version
// derived by id holds its table as the table of an earlier version plus
// the deltas since (at most snapshotChain), and makes the whole table on
// first use: publishing a change does not copy the table, and only
// Traefik, the file output, a resyncing ingress or the gone list ask for
// it.
func (s *Snapshot) Configuration() *dynconfig.Configuration {
	s.cfgOnce.Do(func() {
		if s.config != nil {
			return
		}
		b := s.base.Configuration()
		cfg := &dynconfig.Configuration{HTTP: &dynconfig.HTTPConfiguration{
			Routers:  maps.Clone(b.HTTP.Routers),
			Services: maps.Clone(b.HTTP.Services),
		}}
		for _, d := range s.since {
			for _, n := range d.RemoveRouters {
				delete(cfg.HTTP.Routers, n)
			}
			maps.Copy(cfg.HTTP.Routers, d.Routers)
			for _, n := range d.RemoveServices {
				delete(cfg.HTTP.Services, n)
			}
			maps.Copy(cfg.HTTP.Services, d.Services)
		}
		s.config = cfg
	})
	return s.config
}

// Body is the Traefik dynamic configuration (JSON). It is rendered on first
// use: a table reaching nullops-ingress as a delta is never rendered whole
// unless Traefik, the file or a resyncing ingress asks for it.
func (s *Snapshot) Body() []byte {
	s.bodyOnce.Do(func() {
		s.body, s.bodyErr = json.Marshal(s.Configuration())
	})
	return s.body
}

// rendered is one variant of a snapshot, rendered once.
type rendered struct {
	body []byte
	etag string
}

// maxVariants bounds the variants cached per snapshot (a Traefik setup uses
// one or two; the query comes from holders of the ingress token).
const maxVariants = 16

// Publisher owns the current route table.
type Publisher struct {
	st   *store.Store
	opts Options
	log  zerolog.Logger

	dirty      chan struct{}
	signals    atomic.Int64 // Changed calls (one per notification of the feed)
	recomputes atomic.Int64
	catchUps   atomic.Int64 // recomputes for an ingress's unknown table (CatchUp)
	derivedIDs atomic.Int64 // derivations of the routes of named deployments
	handled    atomic.Int64 // signals the current table covers
	computeMu  sync.Mutex
	rowsHash   uint64 // of all rows at the last whole derivation, 0 after a partial one; guarded by computeMu
	table      *table // the current table; guarded by computeMu
	snap       atomic.Pointer[Snapshot]

	pendingMu sync.Mutex
	pending   changes // what notifications named since the last derivation

	mu           sync.Mutex
	newer        chan struct{}          // closed when a new snapshot is stored
	stopped      chan struct{}          // closed when Run returns
	versions     map[string]int64       // ETag → version of recent snapshots
	history      []step                 // the deltas of the last Options.History versions, oldest first
	historyBytes int                    // their encoded size
	written      map[string]ingressSeen // polls this process recorded last, by instance
	confirmed    chan struct{}          // closed on every recorded poll (any replica)
	fileGated    bool                   // File is written only while WriteFileWhileHeld runs; guarded by computeMu
	fileHeld     bool                   // guarded by computeMu
}

// New returns a publisher; call Run to keep it up to date.
func New(st *store.Store, opts Options) (*Publisher, error) {
	if opts.File != "" {
		switch strings.ToLower(filepath.Ext(opts.File)) {
		case ".yaml", ".yml":
		default:
			return nil, fmt.Errorf("ingress.file %q: use a .yml or .yaml file name: Traefik's file provider ignores other names (the content is JSON, which Traefik reads as YAML)", opts.File)
		}
		if opts.FileTempDir == "" {
			opts.FileTempDir = filepath.Dir(filepath.Dir(opts.File))
		}
	}
	if opts.Recheck <= 0 {
		opts.Recheck = time.Minute
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.WithdrawGrace <= 0 {
		opts.WithdrawGrace = DefaultWithdrawGrace
	}
	if opts.ConfirmTimeout <= 0 {
		opts.ConfirmTimeout = DefaultConfirmTimeout
	}
	if opts.GoneRetention == 0 {
		opts.GoneRetention = DefaultGoneRetention
	}
	return &Publisher{
		st:        st,
		opts:      opts,
		log:       opts.Log.With().Str("part", "ingresspub").Logger(),
		dirty:     make(chan struct{}, 1),
		newer:     make(chan struct{}),
		stopped:   make(chan struct{}),
		confirmed: make(chan struct{}),
	}, nil
}

// Changed tells the publisher that something a route depends on may have
// changed, without saying what: the next derivation covers the whole
// table. It never blocks; calls in a burst coalesce into one recompute.
// The change feed's notifications reach the publisher without it (Follow);
// other code does not need to call it.
func (p *Publisher) Changed() {
	p.pendingMu.Lock()
	p.signals.Add(1)
	p.pending.everything()
	p.pendingMu.Unlock()
	p.markDirty()
}

// markAll asks for a derivation of the whole table.
func (p *Publisher) markAll() {
	p.pendingMu.Lock()
	p.pending.everything()
	p.pendingMu.Unlock()
	p.markDirty()
}

// notified records what a route notification names (see parsePayload) and
// asks for a derivation of it: of those deployments only, unless the burst
// names too many or something it cannot decode.
func (p *Publisher) notified(payload string) {
	p.pendingMu.Lock()
	p.signals.Add(1)
	p.pending.add(payload)
	p.pendingMu.Unlock()
	p.markDirty()
}

// takePending returns what was named since the last call and forgets it,
// with the number of signals received until then.
func (p *Publisher) takePending() (changes, int64) {
	p.pendingMu.Lock()
	defer p.pendingMu.Unlock()
	c := p.pending
	p.pending = changes{}
	return c, p.signals.Load()
}

func (p *Publisher) markDirty() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// Follow subscribes the publisher to the route notifications of the change
// feed: a notification naming deployments, nodes or environments makes it
// derive the routes of the deployments concerned (see table), anything
// else, and every (re)connection of the feed (changes committed while it
// was away were not announced), the whole table. Call it before the feed
// runs.
func (p *Publisher) Follow(f *changefeed.Feed) {
	f.Subscribe(store.RoutesChannel, changefeed.Handler{
		Notify: p.notified,
		Resync: p.markAll,
	})
	// Ingress confirmations made through other replicas (a feed without
	// that channel leaves withdrawals to their periodic recheck).
	if f.Listens(store.IngressPollsChannel) {
		f.Subscribe(store.IngressPollsChannel, changefeed.Handler{
			Notify: func(string) { p.pollSeen() },
			Resync: p.pollSeen,
		})
	}
}

// Knows reports whether etag names a table this publisher published
// recently.
func (p *Publisher) Knows(etag string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.versions[etag]
	return ok
}

// CatchUp makes sure the current table is at least as new as one an
// ingress already serves: when etag is not a table of this publisher (the
// ingress got it from another replica, which may have seen a change this
// one has not applied yet), the table is recomputed from the database
// first. So an ingress that moves between replicas never gets an older
// table than the one it has.
func (p *Publisher) CatchUp(ctx context.Context, etag string) {
	if etag == "" || p.Knows(etag) {
		return
	}
	p.catchUps.Add(1)
	if err := p.Recompute(ctx); err != nil && ctx.Err() == nil {
		p.log.Warn().Err(err).Msg("recompute routes for an ingress ahead of this replica")
	}
}

// GateFile makes the File output wait for WriteFileWhileHeld: with several
// server replicas, only the one running the ingress-file singleton job
// writes it (a replica a change reached later would otherwise overwrite a
// newer table with an older one). Call it before Run.
func (p *Publisher) GateFile() {
	p.computeMu.Lock()
	p.fileGated = true
	p.computeMu.Unlock()
}

// WriteFileWhileHeld writes the current table to File now and every new
// one until ctx ends (the singleton job of the file output).
func (p *Publisher) WriteFileWhileHeld(ctx context.Context) {
	p.computeMu.Lock()
	p.fileHeld = true
	if s := p.snap.Load(); s != nil {
		p.writeFile(s)
	}
	p.computeMu.Unlock()
	<-ctx.Done()
	p.computeMu.Lock()
	p.fileHeld = false
	p.computeMu.Unlock()
}

// writeFile writes s to File (caller holds computeMu).
func (p *Publisher) writeFile(s *Snapshot) {
	body := s.Body()
	if s.bodyErr != nil {
		p.log.Error().Err(s.bodyErr).Msg("render route table for the file")
		return
	}
	if err := atomicfile.WriteVia(p.opts.File, p.opts.FileTempDir, body); err != nil {
		p.log.Error().Err(err).Str("file", p.opts.File).Msg("write ingress configuration file")
	}
}

// Stats are counters for tests and benchmarks.
type Stats struct {
	Signals    int64 // notifications and Changed calls
	Recomputes int64 // derivations of the whole table (Recompute calls)
	CatchUps   int64 // of which for an ingress ahead of this replica (CatchUp)
	Partial    int64 // derivations of the routes of named deployments only
	// Handled is how many of the Signals the current table covers: once
	// it reaches the Signals counted after a notification was delivered,
	// that notification's change is in Current (or changed nothing).
	Handled int64
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() Stats {
	return Stats{Signals: p.signals.Load(), Recomputes: p.recomputes.Load(), CatchUps: p.catchUps.Load(), Partial: p.derivedIDs.Load(), Handled: p.handled.Load()}
}

// Current returns the latest snapshot, or nil before the first computation.
func (p *Publisher) Current() *Snapshot { return p.snap.Load() }

// WaitNewer blocks until a snapshot newer than version exists (version 0
// waits for the first one), ctx ends or the publisher stops. It returns the
// current snapshot (possibly nil) and whether it is newer.
func (p *Publisher) WaitNewer(ctx context.Context, version int64) (*Snapshot, bool) {
	for {
		p.mu.Lock()
		ch := p.newer
		p.mu.Unlock()
		if s := p.snap.Load(); s != nil && s.Version > version {
			return s, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return p.snap.Load(), false
		case <-p.stopped:
			return p.snap.Load(), false
		}
	}
}

// Run keeps the route table current until ctx ends: it derives the whole
// table at start, on a resync of the change feed, on Changed and every
// Options.Recheck, and the routes of the deployments notifications name
// (Follow) otherwise.
func (p *Publisher) Run(ctx context.Context) {
	defer close(p.stopped)
	p.markAll()
	tick := time.NewTicker(p.opts.Recheck)
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.markAll()
			continue
		case <-retry:
			retry = nil
		case <-p.dirty:
		}
		ch, upTo := p.takePending()
		var err error
		switch {
		case ch.all:
			err = p.Recompute(ctx)
		case !ch.empty():
			err = p.derive(ctx, ch)
		}
		if err == nil {
			p.handled.Store(upTo)
		} else {
			if ctx.Err() != nil {
				return
			}
			p.log.Error().Err(err).Msg("recompute ingress routes; retrying in 1s")
			p.pendingMu.Lock()
			p.pending.everything()
			p.pendingMu.Unlock()
			retry = time.After(time.Second)
		}
	}
}

// Recompute derives the whole route table now and publishes it as a new
// version if it differs from the current one.
func (p *Publisher) Recompute(ctx context.Context) error {
	p.computeMu.Lock()
	defer p.computeMu.Unlock()
	return p.recomputeLocked(ctx)
}

func (p *Publisher) recomputeLocked(ctx context.Context) error {
	p.recomputes.Add(1)
	start := time.Now()
	rows, err := p.st.RouteRows(ctx)
	if err != nil {
		return err
	}
	// Many recomputes find nothing changed (a column the triggers watch
	// changed without changing a route, the periodic recheck): skip
	// rendering then.
	rowsHash := hashRows(rows)
	if p.snap.Load() != nil && p.table != nil && rowsHash == p.rowsHash {
		metricRecompute.Observe(time.Since(start).Seconds())
		return nil
	}
	t, s, d := loadTable(rows, p.table)
	// The table takes the state over; until it is applied below, the old
	// table must not be used again.
	p.table, p.rowsHash = nil, 0
	cur := p.snap.Load()
	if cur != nil && d.Changes() == 0 {
		p.table, p.rowsHash = t, rowsHash
		metricRecompute.Observe(time.Since(start).Seconds())
		return nil
	}
	if err := t.apply(d, false); err != nil {
		// Cannot happen (Diff computed d from this state); start over.
		return fmt.Errorf("route table state: %w", err)
	}
	p.table, p.rowsHash = t, rowsHash
	return p.publishLocked(s, d, cur, start)
}

// derive derives the routes of the deployments ch names (and of those on
// the nodes and in the environments it names) and publishes the table as a
// new version if they changed. It falls back to Recompute when there is no
// table yet or the rows share router names (see errShared).
func (p *Publisher) derive(ctx context.Context, ch changes) error {
	p.computeMu.Lock()
	defer p.computeMu.Unlock()
	cur := p.snap.Load()
	if p.table == nil || cur == nil {
		return p.recomputeLocked(ctx)
	}
	p.derivedIDs.Add(1)
	start := time.Now()
	t := p.table
	deps := t.affected(ch.deployments, ch.nodes, ch.environments)
	rows, err := p.st.RouteRowsOf(ctx, sortedIDs(deps), sortedIDs(ch.nodes), sortedIDs(ch.environments))
	if err != nil {
		return err
	}
	// From here on the table no longer matches the rows of the last whole
	// derivation.
	p.rowsHash = 0
	d, err := t.replace(deps, rows)
	if err != nil {
		return p.recomputeLocked(ctx)
	}
	if d.Changes() == 0 {
		metricRecompute.Observe(time.Since(start).Seconds())
		return nil
	}
	if err := t.apply(d, true); err != nil {
		// Cannot happen (Patch computed d from this state); start over.
		p.table = nil
		return fmt.Errorf("route table state: %w", err)
	}
	s := &Snapshot{Routed: t.routed, Offline: t.offline, Deploying: t.deploying, Problems: t.problemList(),
		entries: len(t.state.Config().HTTP.Routers) + len(t.state.Config().HTTP.Services)}
	switch {
	case cur.base == nil: // cur holds its table
		s.base, s.since = cur, []*dynconfig.Delta{d}
	case len(cur.since) < snapshotChain:
		s.base, s.since = cur.base, append(slices.Clip(cur.since), d)
	default:
		s.config = t.state.Snapshot()
	}
	return p.publishLocked(s, d, cur, start)
}

// publishLocked publishes s, the table after d, as the version after cur;
// the caller holds computeMu and applied d to the table's state.
func (p *Publisher) publishLocked(s *Snapshot, d *dynconfig.Delta, cur *Snapshot, start time.Time) error {
	s.ETag = p.table.state.ETag()
	s.ComputedAt = time.Now()
	s.Version = 1
	if cur != nil {
		s.Version = cur.Version + 1
		d.FromVersion, d.ToVersion = cur.Version, s.Version
		s.delta = d
		body, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("render route table delta: %w", err)
		}
		s.deltaBody = body
	}
	metricRecompute.Observe(time.Since(start).Seconds())

	for _, pr := range s.Problems {
		p.log.Warn().Str("problem", pr).Msg("route left out of the ingress table")
	}
	// The ETag and the history are recorded before the snapshot becomes
	// visible: whoever sees it can look its ETag up and get its delta.
	p.mu.Lock()
	p.rememberLocked(s)
	p.recordLocked(s)
	p.snap.Store(s)
	close(p.newer)
	p.newer = make(chan struct{})
	p.mu.Unlock()

	metricVersion.Set(float64(s.Version))
	metricRoutes.WithLabelValues("routed").Set(float64(s.Routed))
	metricRoutes.WithLabelValues("offline").Set(float64(s.Offline))
	metricRoutes.WithLabelValues("deploying").Set(float64(s.Deploying))
	p.log.Info().Int64("version", s.Version).Int("routed", s.Routed).Int("offline", s.Offline).
		Int("deploying", s.Deploying).Dur("took", time.Since(start)).Msg("ingress route table published")

	if p.opts.File != "" && (!p.fileGated || p.fileHeld) {
		body := s.Body()
		if s.bodyErr != nil {
			return fmt.Errorf("render route table: %w", s.bodyErr)
		}
		if err := atomicfile.WriteVia(p.opts.File, p.opts.FileTempDir, body); err != nil {
			p.log.Error().Err(err).Str("file", p.opts.File).Msg("write ingress configuration file")
		}
	}
	return nil
}

func hashRows(rows []store.RouteRow) uint64 {
	h := fnv.New64a()
	var buf []byte
	for _, r := range rows {
		buf = strconv.AppendInt(buf[:0], r.DeploymentID, 10)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, r.EnvironmentID, 10)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, r.NodeID, 10)
		buf = append(buf, 0)
		for _, f := range []string{r.DeploymentName, r.DeploymentStatus, r.EnvironmentName, r.BaseDomain, r.HostTemplate, r.NodeName, r.NodeHost, r.NodeStatus, r.Service, r.RouteHost} {
			buf = append(buf, f...)
			buf = append(buf, 0)
		}
		buf = strconv.AppendInt(buf, int64(r.HostPort), 10)
		buf = append(buf, '\n')
		_, _ = h.Write(buf)
	}
	return h.Sum64()
}

// Build turns route rows into a configuration (without rendering it).
func Build(rows []store.RouteRow) *Snapshot {
	return build(rows, nil)
}

// rowEntry is what one route row contributes to the table. The publisher
// keeps them between derivations by row (see table): an unchanged row gives
// the same router and service values, without new allocations, and
// dynconfig.State.Diff finds them equal by pointer.
type rowEntry struct {
	name, host string
	err        error
	state      int
	router     *dynconfig.Router
	service    *dynconfig.Service // nil unless routed
}

func newRowEntry(b *dynconfig.Builder, r store.RouteRow) *rowEntry {
	e := &rowEntry{name: dynconfig.RouterName(r.DeploymentID, r.Service), state: state(r)}
	e.host, e.err = HostNames{Environment: r.EnvironmentName, BaseDomain: r.BaseDomain, Template: r.HostTemplate}.Host(r.DeploymentName, r.Service)
	if e.err != nil {
		return e
	}
	switch e.state {
	case stateRouted:
		e.router = b.Router(e.name, e.host)
		e.service = dynconfig.BackendService("http://" + net.JoinHostPort(r.BackendHost(), strconv.Itoa(r.HostPort)))
	case stateOffline:
		e.router = b.Router(dynconfig.ServiceOffline, e.host)
	default:
		e.router = b.Router(dynconfig.ServiceDeploying, e.host)
	}
	return e
}

// build is Build with entries[i], when set, the entry of rows[i] (made by
// an earlier newRowEntry for an equal row). In row order, the first row
// claiming a host gets it; later ones are reported as problems.
func build(rows []store.RouteRow, entries []*rowEntry) *Snapshot {
	b := dynconfig.NewBuilder(nil, nil)
	b.Grow(len(rows))
	s := &Snapshot{}
	hosts := make(map[string]string, len(rows))
	for i, r := range rows {
		var e *rowEntry
		if entries != nil {
			e = entries[i]
		}
		if e == nil {
			e = newRowEntry(b, r)
		}
		if e.err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("deployment %d service %q: %v", r.DeploymentID, r.Service, e.err))
			continue
		}
		if prev, dup := hosts[e.host]; dup {
			s.Problems = append(s.Problems, fmt.Sprintf("deployment %d service %q: host %s is already used by router %s", r.DeploymentID, r.Service, e.host, prev))
			continue
		}
		hosts[e.host] = e.name
		b.Add(e.name, e.router, e.service)
		switch e.state {
		case stateRouted:
			s.Routed++
		case stateOffline:
			s.Offline++
		default:
			s.Deploying++
		}
	}
	s.config = b.Configuration()
	s.entries = len(s.config.HTTP.Routers) + len(s.config.HTTP.Services)
	return s
}

const (
	stateRouted = iota
	stateOffline
	stateDeploying
)

func state(r store.RouteRow) int {
	switch r.DeploymentStatus {
	case "running":
		// Also while its node is unreachable: the deployment becomes
		// offline only after the grace (agents.offlinegrace).
		if r.HostPort <= 0 || r.BackendHost() == "" {
			return stateDeploying // port not reported yet
		}
		return stateRouted
	case "offline":
		return stateOffline
	default: // pending, deploying
		return stateDeploying
	}
}

// Variant adapts the published configuration to one Traefik setup: routers
// bound to named entry points and/or served over TLS. The zero Variant is
// the document as published (all entry points, no router TLS).
type Variant struct {
	EntryPoints  []string
	TLS          bool
	CertResolver string
}

// IsZero reports whether v changes nothing.
func (v Variant) IsZero() bool { return len(v.EntryPoints) == 0 && !v.TLS && v.CertResolver == "" }

func (v Variant) key() string {
	return strings.Join(v.EntryPoints, ",") + "|" + strconv.FormatBool(v.TLS) + "|" + v.CertResolver
}

// Render returns the body and ETag of s for variant v. Each variant is
// rendered once per snapshot: every Traefik instance polling with the same
// query gets the same bytes without a new encoding of the whole table.
func (s *Snapshot) Render(v Variant) ([]byte, string, error) {
	if v.IsZero() {
		body := s.Body()
		if s.bodyErr != nil {
			return nil, "", fmt.Errorf("render route table: %w", s.bodyErr)
		}
		return body, s.ETag, nil
	}
	k := v.key()
	s.variantsMu.Lock()
	defer s.variantsMu.Unlock()
	if r, ok := s.variants[k]; ok {
		return r.body, r.etag, nil
	}
	body, etag, err := s.render(v)
	if err != nil {
		return nil, "", err
	}
	if s.variants == nil {
		s.variants = map[string]rendered{}
	}
	if len(s.variants) < maxVariants {
		s.variants[k] = rendered{body: body, etag: etag}
	}
	return body, etag, nil
}

func (s *Snapshot) render(v Variant) ([]byte, string, error) {
	cfg := &dynconfig.Configuration{HTTP: &dynconfig.HTTPConfiguration{
		Routers:  make(map[string]*dynconfig.Router, len(s.Configuration().HTTP.Routers)),
		Services: s.Configuration().HTTP.Services,
	}}
	var tls *dynconfig.RouterTLSConfig
	if v.TLS || v.CertResolver != "" {
		tls = &dynconfig.RouterTLSConfig{CertResolver: v.CertResolver}
	}
	for name, r := range s.Configuration().HTTP.Routers {
		c := *r
		c.EntryPoints = v.EntryPoints
		c.TLS = tls
		cfg.HTTP.Routers[name] = &c
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("render route table variant: %w", err)
	}
	sum := sha256.Sum256(body)
	return body, `"` + hex.EncodeToString(sum[:16]) + `"`, nil
}

// RecordActivity applies the last request times nullops-ingress reports
// (see store.RecordIngressActivity for the rules).
func (p *Publisher) RecordActivity(ctx context.Context, items []store.IngressActivity) (int64, error) {
	n, err := p.st.RecordIngressActivity(ctx, items)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// ErrNotReady is returned while no route table has been computed yet.
var ErrNotReady = errs.New(errs.Unavailable, "not_ready", "the ingress route table has not been computed yet")
