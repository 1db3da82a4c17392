// Package watch keeps nullops-ingress's routing table in step with the
// server: it long-polls GET /api/v1/ingress/traefik (If-None-Match + wait),
// asking for incremental updates (dynconfig.Delta) when it can apply them
// and taking the whole document otherwise, applies every new version,
// persists the last good one atomically in the state directory and loads it
// at start, so the ingress keeps serving the last known routes while the
// server is unreachable or restarting. It also delivers activity reports to
// the server.
package watch

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"github.com/nullops/nullops/ingress/activity"
	"github.com/nullops/nullops/ingress/atomicfile"
	"github.com/nullops/nullops/ingress/dynconfig"
)

// StateFile is the name of the persisted configuration in the state dir.
const StateFile = "routes.json"

var (
	metricReachable = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "nullops_ingress_server_reachable",
		Help: "1 when the last request to nullops-server succeeded.",
	})
	metricVersion = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "nullops_ingress_config_version",
		Help: "Server-side version number of the configuration in use.",
	})
	metricLastFetch = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "nullops_ingress_last_config_fetch_timestamp_seconds",
		Help: "When the server last answered a configuration request.",
	})
	metricUpdates = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "nullops_ingress_config_updates_total",
		Help: "Route table updates applied, by kind (full document or delta).",
	}, []string{"kind"})
	metricUpdateBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "nullops_ingress_config_update_bytes_total",
		Help: "Bytes of the route table updates applied, by kind (full document or delta).",
	}, []string{"kind"})
	metricDeltaRefused = promauto.NewCounter(prometheus.CounterOpts{
		Name: "nullops_ingress_config_deltas_refused_total",
		Help: "Deltas refused (not starting at the table in use, or not producing the announced one); a whole document follows.",
	})
)

// Applier installs a configuration document (proxy.Proxy.Apply).
type Applier func(body []byte, version string) ([]dynconfig.Problem, error)

// DeltaApplier applies an incremental update to the table in use
// (proxy.Proxy.ApplyDelta); it refuses one that does not start at that
// table or does not produce the table it announces.
type DeltaApplier func(d *dynconfig.Delta) ([]dynconfig.Problem, error)

// Options configure a Watcher.
type Options struct {
	ServerURL string
	Token     string
	StateDir  string
	// Wait is how long one long-poll may wait on the server (default 30s).
	Wait time.Duration
	// BackoffMin/BackoffMax bound the retry delay while the server is
	// unreachable (defaults 250ms and 15s).
	BackoffMin, BackoffMax time.Duration
	Apply                  Applier
	// ApplyDelta, when set, makes the watcher ask for incremental updates
	// (Accept: dynconfig.MediaTypeDelta); Document then returns the
	// configuration in use, which is what gets persisted after deltas.
	ApplyDelta DeltaApplier
	Document   func() (*dynconfig.Configuration, string)
	Log        zerolog.Logger
}

// Stats counts what the watcher received.
type Stats struct {
	Full, Delta           int64 // documents and deltas applied
	FullBytes, DeltaBytes int64 // their bytes
	Refused               int64 // deltas refused (then a whole document is fetched)
	LastBytes             int64 // size of the last update applied
}

// Watcher follows the server's route table.
type Watcher struct {
	opts   Options
	client *http.Client
	base   *url.URL
	etag   atomic.Value // string: ETag of the configuration in use
	log    zerolog.Logger
	// save holds the latest configuration not yet persisted; persisting
	// happens off the polling path so a new version is fetched at once.
	save chan pending
	// instance identifies this process to the server, which counts every
	// poll's If-None-Match as this instance's confirmation that it serves
	// that table (the server withdraws routes before containers stop).
	instance string
	// needFull: the last delta was refused; ask for the whole document.
	needFull bool
	statsMu  sync.Mutex
	stats    Stats
	// disowned: another process owns the state dir now (a socket handover).
	disowned atomic.Bool
}

// Disown stops writing to the state dir: after a socket handover the new
// process keeps it, and a table this one still had pending (possibly older
// than the one the successor fetched since) must not overwrite its file.
func (w *Watcher) Disown() { w.disowned.Store(true) }

// Stats returns the counts so far.
func (w *Watcher) Stats() Stats {
	w.statsMu.Lock()
	defer w.statsMu.Unlock()
	return w.stats
}

func (w *Watcher) count(delta bool, n int) {
	w.statsMu.Lock()
	defer w.statsMu.Unlock()
	w.stats.LastBytes = int64(n)
	if delta {
		w.stats.Delta++
		w.stats.DeltaBytes += int64(n)
	} else {
		w.stats.Full++
		w.stats.FullBytes += int64(n)
	}
	kind := "full"
	if delta {
		kind = "delta"
	}
	metricUpdates.WithLabelValues(kind).Inc()
	metricUpdateBytes.WithLabelValues(kind).Add(float64(n))
}

// HeaderInstance carries the watcher's instance id on every poll.
const HeaderInstance = "X-Nullops-Ingress-Instance"

// stateMeta is the first line of the state file; the configuration body
// follows exactly as the server sent it (no re-encoding of megabytes).
type stateMeta struct {
	ETag    string    `json:"etag"`
	Version int64     `json:"version"`
	SavedAt time.Time `json:"saved_at"`
}

// pending is a table to persist: body as received, or nil after a delta
// (the configuration in use is encoded then, at most every persistDelay).
type pending struct {
	body    []byte
	etag    string
	version int64
}

// persistDelay spaces the encodings of the table after deltas: each costs
// as much as the whole document, and the file only matters at the next
// start (the server brings a stale table up to date with a delta).
var persistDelay = time.Second

// New returns a watcher.
func New(opts Options) (*Watcher, error) {
	base, err := url.Parse(strings.TrimSuffix(opts.ServerURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("server url %q: not a URL", opts.ServerURL)
	}
	if opts.Wait <= 0 {
		opts.Wait = 30 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 250 * time.Millisecond
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = max(15*time.Second, opts.BackoffMin)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return &Watcher{
		opts:     opts,
		base:     base,
		client:   &http.Client{Transport: tr, Timeout: opts.Wait + 15*time.Second},
		log:      opts.Log.With().Str("part", "watch").Logger(),
		save:     make(chan pending, 1),
		instance: newInstanceID(),
	}, nil
}

// ETag returns the ETag of the configuration in use ("" before any).
func (w *Watcher) ETag() string {
	s, _ := w.etag.Load().(string)
	return s
}

// LoadState applies the configuration persisted by an earlier run, so the
// ingress serves the last known routes before the server answers. It
// reports whether one was loaded.
func (w *Watcher) LoadState() (bool, error) {
	path := filepath.Join(w.opts.StateDir, StateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read saved routes: %w", err)
	}
	line, body, found := bytes.Cut(data, []byte("\n"))
	var s stateMeta
	if !found {
		return false, fmt.Errorf("saved routes %s are corrupt: no header line", path)
	}
	if err := json.Unmarshal(line, &s); err != nil {
		return false, fmt.Errorf("saved routes %s are corrupt: %w", path, err)
	}
	if _, err := w.opts.Apply(body, s.ETag); err != nil {
		return false, fmt.Errorf("saved routes %s: %w", path, err)
	}
	w.etag.Store(s.ETag)
	metricVersion.Set(float64(s.Version))
	w.log.Info().Str("etag", s.ETag).Int64("version", s.Version).Time("saved_at", s.SavedAt).Msg("serving the routes saved by the last run until the server answers")
	return true, nil
}

// Run long-polls the server until ctx ends. Errors never stop it: the
// current table keeps serving and the watcher retries with capped
// exponential backoff and jitter.
func (w *Watcher) Run(ctx context.Context) {
	saved := make(chan struct{})
	go func() { w.persistLoop(ctx); close(saved) }()
	defer func() { <-saved }()
	backoff := w.opts.BackoffMin
	failing := false
	for ctx.Err() == nil {
		err := w.poll(ctx)
		if err == nil {
			if failing {
				w.log.Info().Msg("server reachable again")
			}
			failing = false
			backoff = w.opts.BackoffMin
			metricReachable.Set(1)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		metricReachable.Set(0)
		ev := w.log.Warn()
		if failing {
			ev = w.log.Debug()
		}
		ev.Err(err).Dur("retry_in", backoff).Msg("cannot get routes from the server; serving the last good table")
		failing = true
		sleep := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(sleep):
		}
		backoff = min(backoff*2, w.opts.BackoffMax)
	}
}

// poll does one long-poll and applies what it returns.
func (w *Watcher) poll(ctx context.Context) error {
	u := *w.base
	u.Path += "/api/v1/ingress/traefik"
	current := w.ETag()
	if current != "" {
		u.RawQuery = "wait=" + w.opts.Wait.String()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+w.opts.Token)
	req.Header.Set(HeaderInstance, w.instance)
	if current != "" {
		req.Header.Set("If-None-Match", current)
	}
	if w.opts.ApplyDelta != nil && !w.needFull && current != "" {
		req.Header.Set("Accept", dynconfig.MediaTypeDelta+", application/json;q=0.5")
	}
	res, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("get routes: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusNotModified:
		_, _ = io.Copy(io.Discard, res.Body)
		metricLastFetch.SetToCurrentTime()
		return nil
	case http.StatusOK:
	case http.StatusUnauthorized:
		return errors.New("the server refused the ingress token (401): check token / NULLOPS_TOKEN against the server's ingress.token")
	default:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("get routes: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, dynconfig.MaxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("read routes: %w", err)
	}
	metricLastFetch.SetToCurrentTime()
	etag := res.Header.Get("ETag")
	version, _ := strconv.ParseInt(res.Header.Get(dynconfig.HeaderConfigVersion), 10, 64)
	if w.opts.ApplyDelta != nil && strings.HasPrefix(res.Header.Get("Content-Type"), dynconfig.MediaTypeDelta) {
		return w.applyDelta(body, version)
	}
	if etag != "" && etag == current {
		return nil
	}
	start := time.Now()
	problems, err := w.opts.Apply(body, etag)
	if err != nil {
		// Keep serving the previous table; wait for the next version
		// instead of fetching the broken one again at once.
		w.etag.Store(etag)
		w.log.Error().Err(err).Str("etag", etag).Msg("refused a configuration from the server; keeping the previous table")
		return nil
	}
	for _, p := range problems {
		w.log.Warn().Str("router", p.Router).Err(p.Err).Msg("router not served")
	}
	w.needFull = false
	w.etag.Store(etag)
	w.count(false, len(body))
	metricVersion.Set(float64(version))
	w.log.Info().Str("etag", etag).Int64("version", version).Int("bytes", len(body)).Dur("apply", time.Since(start)).Msg("routing table updated")
	w.queue(pending{body: body, etag: etag, version: version})
	return nil
}

// applyDelta applies an incremental update. One that does not decode or
// does not fit the table in use changes nothing and makes the next poll
// ask for the whole document.
func (w *Watcher) applyDelta(body []byte, version int64) error {
	start := time.Now()
	d, err := dynconfig.DecodeDelta(body)
	var problems []dynconfig.Problem
	if err == nil {
		problems, err = w.opts.ApplyDelta(d)
	}
	if err != nil {
		w.needFull = true
		w.statsMu.Lock()
		w.stats.Refused++
		w.statsMu.Unlock()
		metricDeltaRefused.Inc()
		w.log.Warn().Err(err).Msg("refused a route table delta; fetching the whole table")
		return nil
	}
	for _, p := range problems {
		w.log.Warn().Str("router", p.Router).Err(p.Err).Msg("router not served")
	}
	w.etag.Store(d.To)
	w.count(true, len(body))
	metricVersion.Set(float64(version))
	w.log.Debug().Str("etag", d.To).Int64("version", d.ToVersion).Int64("from_version", d.FromVersion).
		Int("changes", d.Changes()).Int("bytes", len(body)).Dur("apply", time.Since(start)).Msg("routing table updated by a delta")
	w.queue(pending{etag: d.To, version: version})
	return nil
}

// queue hands a table to the persisting goroutine; the latest wins.
func (w *Watcher) queue(p pending) {
	select {
	case <-w.save:
	default:
	}
	w.save <- p
}

// persistLoop writes configurations to the state dir as they come, and the
// last one still pending when ctx ends. After deltas it encodes the table
// in use at most every persistDelay.
func (w *Watcher) persistLoop(ctx context.Context) {
	for {
		select {
		case p := <-w.save:
			if p.body == nil {
				t := time.NewTimer(persistDelay)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				select {
				case newer := <-w.save:
					p = newer
				default:
				}
			}
			w.persist(p)
		case <-ctx.Done():
			select {
			case p := <-w.save:
				w.persist(p)
			default:
			}
			return
		}
	}
}

func (w *Watcher) persist(p pending) {
	if w.disowned.Load() {
		return
	}
	if p.body == nil && w.opts.Document != nil {
		cfg, etag := w.opts.Document()
		if cfg == nil {
			return
		}
		body, err := json.Marshal(cfg)
		if err != nil {
			w.log.Error().Err(err).Msg("encode routes to persist them")
			return
		}
		p.body, p.etag = body, etag
	}
	if p.body == nil {
		return
	}
	if err := w.write(p); err != nil {
		w.log.Error().Err(err).Msg("persist routes (they are served, but would be lost on restart)")
	}
}

func (w *Watcher) write(p pending) error {
	if err := os.MkdirAll(w.opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	meta, err := json.Marshal(stateMeta{ETag: p.etag, Version: p.version, SavedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	data := make([]byte, 0, len(meta)+1+len(p.body))
	data = append(append(append(data, meta...), '\n'), p.body...)
	return atomicfile.Write(filepath.Join(w.opts.StateDir, StateFile), data)
}

// SendActivity posts a batch of last request times to the server
// (implements activity.Sender).
func (w *Watcher) SendActivity(ctx context.Context, items []activity.Item) error {
	body, err := json.Marshal(dynconfig.ActivityReport{Deployments: items})
	if err != nil {
		return err
	}
	u := *w.base
	u.Path += dynconfig.ActivityPath
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+w.opts.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("post activity: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("post activity: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return nil
}

// newInstanceID returns a random id for this process.
func newInstanceID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
