// Package registry lists image tags of OCI/Docker registries through
// go-containerregistry (basic auth, Docker Hub token auth, anonymous; plain
// HTTP for insecure/loopback registries), filters them with a glob pattern,
// orders them newest first and caches results briefly. Failures are
// classified (unreachable, credentials refused, unknown repository) so users
// see what to fix.
//
// Ordering ("newest first where the registry allows"): the tags API has no
// dates, so
//  1. when every matching tag is a version (v1.2.3, 1.2, 2.0.0-rc.1) they are
//     sorted by semantic version, highest first (order "semver");
//  2. otherwise, when at most MaxCreatedLookups tags match, each tag's image
//     config is fetched and tags are sorted by its "created" time, newest
//     first, ties in reverse lexical order (order "created");
//  3. otherwise, or when a config cannot be read, reverse lexical order
//     (order "lexical").
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Orders reported in a Listing.
const (
	OrderSemver  = "semver"
	OrderCreated = "created"
	OrderLexical = "lexical"
)

// Listing is the result of a tag listing.
type Listing struct {
	Tags      []string  `json:"tags"`
	Order     string    `json:"order"`
	FetchedAt time.Time `json:"fetched_at"`
}

// Client lists tags and checks connections. The zero value is not usable;
// call New.
type Client struct {
	// TTL is how long a listing is served from the cache.
	TTL time.Duration
	// Timeout bounds one operation (listing plus config look-ups).
	Timeout time.Duration
	// MaxCreatedLookups bounds the image configs fetched to order tags by
	// creation time.
	MaxCreatedLookups int
	// MaxTags bounds the tags read from one repository.
	MaxTags int

	transport http.RoundTripper
	now       func() time.Time

	mu    sync.Mutex
	cache map[string]cacheEntry
}

type cacheEntry struct {
	listing Listing
	expires time.Time
}

const maxCacheEntries = 512

// New returns a Client with defaults: 30 s cache, 20 s timeout, up to 30
// config look-ups.
func New() *Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	base.TLSHandshakeTimeout = 5 * time.Second
	base.ResponseHeaderTimeout = 15 * time.Second
	return &Client{
		TTL:               30 * time.Second,
		Timeout:           20 * time.Second,
		MaxCreatedLookups: 30,
		MaxTags:           10000,
		transport:         base,
		now:               time.Now,
		cache:             map[string]cacheEntry{},
	}
}

func (c *Client) options(ctx context.Context, ep Endpoint) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth(ep)),
		remote.WithTransport(c.transport),
		remote.WithUserAgent("nullops"),
		// One quick retry of temporary failures; a down registry must fail fast.
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 2}),
	}
}

func auth(ep Endpoint) authn.Authenticator {
	if ep.Username == "" && ep.Password == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: ep.Username, Password: ep.Password}
}

func anonymous(ep Endpoint) bool { return ep.Username == "" && ep.Password == "" }

// cacheKey identifies endpoint+credentials+image+pattern without holding the
// password in memory longer than the Endpoint does.
func cacheKey(ep Endpoint, image, pattern string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%t\x00%s\x00%s\x00%s\x00%s", ep.URL, ep.Insecure, ep.Username, ep.Password, image, pattern)
	return hex.EncodeToString(h.Sum(nil))
}

// Tags lists image's tags matching pattern ("" = all), newest first.
func (c *Client) Tags(ctx context.Context, ep Endpoint, image, pattern string) (Listing, error) {
	if pattern != "" {
		if err := ValidatePattern(pattern); err != nil {
			return Listing{}, invalid("%v", err)
		}
	}
	repo, err := ep.repository(image)
	if err != nil {
		return Listing{}, invalid("%v", err)
	}
	key := cacheKey(ep, image, pattern)
	now := c.now()
	c.mu.Lock()
	if e, ok := c.cache[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.listing, nil
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	host := repo.RegistryStr()
	puller, err := remote.NewPuller(c.options(ctx, ep)...)
	if err != nil {
		return Listing{}, classify(err, host, image, anonymous(ep))
	}
	lister, err := puller.Lister(ctx, repo)
	if err != nil {
		return Listing{}, classify(err, host, image, anonymous(ep))
	}
	var all []string
	for lister.HasNext() && len(all) < c.MaxTags {
		page, err := lister.Next(ctx)
		if err != nil {
			return Listing{}, classify(err, host, image, anonymous(ep))
		}
		all = append(all, page.Tags...)
	}
	var tags []string
	for _, t := range all {
		if MatchTag(pattern, t) {
			tags = append(tags, t)
		}
	}
	l := Listing{Tags: tags, FetchedAt: now}
	switch {
	case sortSemver(tags):
		l.Order = OrderSemver
	case len(tags) <= c.MaxCreatedLookups && c.sortCreated(ctx, puller, ep, image, tags):
		l.Order = OrderCreated
	default:
		sort.Sort(sort.Reverse(sort.StringSlice(tags)))
		l.Order = OrderLexical
	}
	if l.Tags == nil {
		l.Tags = []string{}
	}
	c.store(key, l, now)
	return l, nil
}

func (c *Client) store(key string, l Listing, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= maxCacheEntries {
		for k, e := range c.cache {
			if !now.Before(e.expires) {
				delete(c.cache, k)
			}
		}
		if len(c.cache) >= maxCacheEntries {
			c.cache = map[string]cacheEntry{}
		}
	}
	c.cache[key] = cacheEntry{listing: l, expires: now.Add(c.TTL)}
}

// Forget drops every cached listing (after a registry's settings change).
func (c *Client) Forget() {
	c.mu.Lock()
	c.cache = map[string]cacheEntry{}
	c.mu.Unlock()
}

var versionRe = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// sortSemver sorts tags by version, highest first, if all are versions.
func sortSemver(tags []string) bool {
	if len(tags) == 0 {
		return true
	}
	vs := make(map[string]*semver.Version, len(tags))
	for _, t := range tags {
		if !versionRe.MatchString(t) {
			return false
		}
		v, err := semver.NewVersion(t)
		if err != nil {
			return false
		}
		vs[t] = v
	}
	sort.SliceStable(tags, func(i, j int) bool {
		a, b := vs[tags[i]], vs[tags[j]]
		if c := a.Compare(b); c != 0 {
			return c > 0
		}
		return tags[i] > tags[j]
	})
	return true
}

// sortCreated orders tags by their image config's created time; it reports
// false (leaving tags unordered) when any config cannot be read.
func (c *Client) sortCreated(ctx context.Context, p *remote.Puller, ep Endpoint, image string, tags []string) bool {
	repo, err := ep.repository(image)
	if err != nil {
		return false
	}
	created := make([]time.Time, len(tags))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := true
	sem := make(chan struct{}, 4)
	for i, t := range tags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ts, err := configCreated(ctx, p, repo.Tag(t))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				return
			}
			created[i] = ts
		}()
	}
	wg.Wait()
	if !ok {
		return false
	}
	idx := make([]int, len(tags))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ta, tb := created[idx[a]], created[idx[b]]
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
		return tags[idx[a]] > tags[idx[b]]
	})
	sorted := make([]string, len(tags))
	for i, k := range idx {
		sorted[i] = tags[k]
	}
	copy(tags, sorted)
	return true
}

func configCreated(ctx context.Context, p *remote.Puller, ref name.Tag) (time.Time, error) {
	desc, err := p.Get(ctx, ref)
	if err != nil {
		return time.Time{}, err
	}
	img, err := desc.Image()
	if err != nil {
		return time.Time{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return time.Time{}, err
	}
	return cf.Created.Time, nil
}

// Check verifies that the registry answers and accepts the credentials
// (anonymous access when none are set).
func (c *Client) Check(ctx context.Context, ep Endpoint) error {
	reg, err := ep.registry()
	if err != nil {
		return invalid("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	host := reg.RegistryStr()
	rt, err := transport.NewWithContext(ctx, reg, auth(ep), c.transport, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return classify(err, host, "", anonymous(ep))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), host), nil)
	if err != nil {
		return invalid("%v", err)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return classify(err, host, "", anonymous(ep))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return classify(err, host, "", anonymous(ep))
	}
	return nil
}
