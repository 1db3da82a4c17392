package dynconfig

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"

	jsonv2 "github.com/go-json-experiment/json"
)

// Incremental updates. nullops-ingress asks for them with
// Accept: MediaTypeDelta and names the table it serves in If-None-Match;
// when the server still has the changes since that table it answers a
// Delta (Content-Type MediaTypeDelta) instead of the whole document.
// Traefik never asks and always gets whole documents.
//
// A table is identified by its content hash (State.ETag): the sum, modulo
// 2^128, of one hash per router and per service. The sum is order-free, so
// both sides update it in O(change) when entries are set or removed, and a
// receiver verifies that applying a delta produced exactly the table the
// sender had (Delta.To) before it serves it. Because the identity is the
// content, not a counter, it stays valid across restarts of the server and
// between server instances.
const (
	// MediaTypeDelta is the content type of an encoded Delta.
	MediaTypeDelta = "application/vnd.nullops.routes-delta+json"
	// HeaderConfigVersion carries the server's version number of a table.
	HeaderConfigVersion = "X-Nullops-Config-Version"
)

// Delta turns the table whose ETag is From into the table whose ETag is To:
// Routers and Services are added or replaced, RemoveRouters and
// RemoveServices removed (removing an absent name changes nothing). The
// versions are the server's numbers, for logs and metrics; continuity is
// checked with the ETags.
type Delta struct {
	From           string              `json:"from"`
	To             string              `json:"to"`
	FromVersion    int64               `json:"fromVersion"`
	ToVersion      int64               `json:"toVersion"`
	Routers        map[string]*Router  `json:"routers,omitempty"`
	Services       map[string]*Service `json:"services,omitempty"`
	RemoveRouters  []string            `json:"removeRouters,omitempty"`
	RemoveServices []string            `json:"removeServices,omitempty"`
}

// Changes is the number of entries the delta sets or removes.
func (d *Delta) Changes() int {
	return len(d.Routers) + len(d.Services) + len(d.RemoveRouters) + len(d.RemoveServices)
}

// DecodeDelta parses an encoded Delta strictly (unknown fields, duplicate
// names, null entries, a name both set and removed are errors).
func DecodeDelta(data []byte) (*Delta, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("delta is %d bytes; the limit is %d", len(data), MaxDocumentBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("delta is empty")
	}
	var d Delta
	if err := jsonv2.Unmarshal(data, &d, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("decode delta: %w", err)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	return &d, nil
}

func (d *Delta) check() error {
	if !validETag(d.From) || !validETag(d.To) {
		return errors.New("delta: from and to must be table ETags")
	}
	if d.FromVersion < 0 || d.ToVersion < 0 {
		return errors.New("delta: versions must not be negative")
	}
	for n, r := range d.Routers {
		if n == "" || r == nil {
			return fmt.Errorf("delta: router %q: empty name or null entry", n)
		}
	}
	for n, s := range d.Services {
		if n == "" || s == nil {
			return fmt.Errorf("delta: service %q: empty name or null entry", n)
		}
	}
	seen := make(map[string]bool, len(d.RemoveRouters))
	for _, n := range d.RemoveRouters {
		if _, set := d.Routers[n]; set || seen[n] || n == "" {
			return fmt.Errorf("delta: router %q removed twice, or both set and removed", n)
		}
		seen[n] = true
	}
	clear(seen)
	for _, n := range d.RemoveServices {
		if _, set := d.Services[n]; set || seen[n] || n == "" {
			return fmt.Errorf("delta: service %q removed twice, or both set and removed", n)
		}
		seen[n] = true
	}
	return nil
}

// validETag accepts what Hash.ETag produces.
func validETag(s string) bool {
	if len(s) != 34 || s[0] != '"' || s[33] != '"' {
		return false
	}
	_, err := hex.DecodeString(s[1:33])
	return err == nil
}

// Merge composes consecutive deltas (each one's From is the previous one's
// To) into one delta from the first's From to the last's To.
func Merge(steps []*Delta) (*Delta, error) {
	if len(steps) == 0 {
		return nil, errors.New("merge: no deltas")
	}
	out := &Delta{From: steps[0].From, FromVersion: steps[0].FromVersion, Routers: map[string]*Router{}, Services: map[string]*Service{}}
	rmR, rmS := map[string]bool{}, map[string]bool{}
	for i, d := range steps {
		if i > 0 && d.From != steps[i-1].To {
			return nil, fmt.Errorf("merge: delta %d starts at %s, the previous one ends at %s", i, d.From, steps[i-1].To)
		}
		for _, n := range d.RemoveRouters {
			delete(out.Routers, n)
			rmR[n] = true
		}
		for n, r := range d.Routers {
			out.Routers[n] = r
			delete(rmR, n)
		}
		for _, n := range d.RemoveServices {
			delete(out.Services, n)
			rmS[n] = true
		}
		for n, s := range d.Services {
			out.Services[n] = s
			delete(rmS, n)
		}
		out.To, out.ToVersion = d.To, d.ToVersion
	}
	out.RemoveRouters = slices.Sorted(maps.Keys(rmR))
	out.RemoveServices = slices.Sorted(maps.Keys(rmS))
	return out, nil
}

// Hash is the content hash of a table or of one of its entries. Tables sum
// the hashes of their entries modulo 2^128.
type Hash [2]uint64

func (h Hash) add(e Hash) Hash {
	lo, c := bits.Add64(h[1], e[1], 0)
	hi, _ := bits.Add64(h[0], e[0], c)
	return Hash{hi, lo}
}

func (h Hash) sub(e Hash) Hash {
	lo, b := bits.Sub64(h[1], e[1], 0)
	hi, _ := bits.Sub64(h[0], e[0], b)
	return Hash{hi, lo}
}

// ETag is the quoted strong ETag naming a table with this hash.
func (h Hash) ETag() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], h[0])
	binary.BigEndian.PutUint64(b[8:], h[1])
	return `"` + hex.EncodeToString(b[:]) + `"`
}

// hasher encodes entries canonically (every field, length-prefixed) and
// hashes them with SHA-256, of which 128 bits are kept. Adding a field to
// Router, Service or what they contain requires adding it here
// (TestEntryHashCoversEveryField fails otherwise).
type hasher struct{ buf []byte }

func (h *hasher) str(s string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

func (h *hasher) num(n int64) { h.buf = binary.AppendVarint(h.buf, n) }

func (h *hasher) strs(ss []string) {
	h.num(int64(len(ss)))
	for _, s := range ss {
		h.str(s)
	}
}

func (h *hasher) sum() Hash {
	s := sha256.Sum256(h.buf)
	return Hash{binary.BigEndian.Uint64(s[:8]), binary.BigEndian.Uint64(s[8:16])}
}

func (h *hasher) router(name string, r *Router) Hash {
	h.buf = append(h.buf[:0], 'R')
	h.str(name)
	h.strs(r.EntryPoints)
	h.strs(r.Middlewares)
	h.str(r.Service)
	h.str(r.Rule)
	h.num(int64(r.Priority))
	if r.TLS == nil {
		h.num(0)
	} else {
		h.num(1)
		h.str(r.TLS.Options)
		h.str(r.TLS.CertResolver)
	}
	return h.sum()
}

func (h *hasher) service(name string, s *Service) Hash {
	h.buf = append(h.buf[:0], 'S')
	h.str(name)
	lb := s.LoadBalancer
	if lb == nil {
		h.num(0)
		return h.sum()
	}
	h.num(1)
	h.num(int64(len(lb.Servers)))
	for _, sv := range lb.Servers {
		h.str(sv.URL)
	}
	switch {
	case lb.PassHostHeader == nil:
		h.num(0)
	case *lb.PassHostHeader:
		h.num(1)
	default:
		h.num(2)
	}
	if lb.ResponseForwarding == nil {
		h.num(0)
	} else {
		h.num(1)
		h.str(lb.ResponseForwarding.FlushInterval)
	}
	return h.sum()
}

// State is a configuration with the hash of each entry, updated in place
// by deltas. It is not safe for concurrent use; the entries themselves are
// never modified (a delta replaces them), so a shallow copy of the maps
// (Snapshot) can be read elsewhere.
type State struct {
	cfg      *Configuration
	routers  map[string]Hash
	services map[string]Hash
	sum      Hash
	h        hasher
}

// NewState takes ownership of cfg (nil means empty) and hashes it.
func NewState(cfg *Configuration) *State {
	if cfg == nil {
		cfg = &Configuration{}
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &HTTPConfiguration{}
	}
	if cfg.HTTP.Routers == nil {
		cfg.HTTP.Routers = map[string]*Router{}
	}
	if cfg.HTTP.Services == nil {
		cfg.HTTP.Services = map[string]*Service{}
	}
	s := &State{cfg: cfg, routers: make(map[string]Hash, len(cfg.HTTP.Routers)), services: make(map[string]Hash, len(cfg.HTTP.Services))}
	for n, r := range cfg.HTTP.Routers {
		if r == nil {
			delete(cfg.HTTP.Routers, n) // a null entry is no entry
			continue
		}
		e := s.h.router(n, r)
		s.routers[n] = e
		s.sum = s.sum.add(e)
	}
	for n, sv := range cfg.HTTP.Services {
		if sv == nil {
			delete(cfg.HTTP.Services, n)
			continue
		}
		e := s.h.service(n, sv)
		s.services[n] = e
		s.sum = s.sum.add(e)
	}
	return s
}

// ETag names the current table.
func (s *State) ETag() string { return s.sum.ETag() }

// Config is the current configuration. Do not modify it; it changes with
// every Apply.
func (s *State) Config() *Configuration { return s.cfg }

// Snapshot returns a configuration with copies of the current maps, safe to
// read while the state keeps changing (e.g. to encode it elsewhere).
func (s *State) Snapshot() *Configuration {
	return &Configuration{HTTP: &HTTPConfiguration{
		Routers:  maps.Clone(s.cfg.HTTP.Routers),
		Services: maps.Clone(s.cfg.HTTP.Services),
	}}
}

// ErrDeltaBase is returned when a delta does not start at the table the
// state holds; ErrDeltaResult when applying it would not produce its To.
// Either way nothing changed: fetch the whole document.
var (
	ErrDeltaBase   = errors.New("delta does not apply to the table in use")
	ErrDeltaResult = errors.New("delta does not produce the table it announces")
)

// result is the table hash after d, computing the new entry hashes once.
func (s *State) result(d *Delta) (Hash, map[string]Hash, map[string]Hash) {
	sum := s.sum
	rh := make(map[string]Hash, len(d.Routers))
	sh := make(map[string]Hash, len(d.Services))
	for _, n := range d.RemoveRouters {
		if e, ok := s.routers[n]; ok {
			sum = sum.sub(e)
		}
	}
	for n, r := range d.Routers {
		if e, ok := s.routers[n]; ok {
			sum = sum.sub(e)
		}
		e := s.h.router(n, r)
		rh[n] = e
		sum = sum.add(e)
	}
	for _, n := range d.RemoveServices {
		if e, ok := s.services[n]; ok {
			sum = sum.sub(e)
		}
	}
	for n, sv := range d.Services {
		if e, ok := s.services[n]; ok {
			sum = sum.sub(e)
		}
		e := s.h.service(n, sv)
		sh[n] = e
		sum = sum.add(e)
	}
	return sum, rh, sh
}

// Apply checks that d starts at the current table and produces d.To, then
// applies it. On error nothing changed.
func (s *State) Apply(d *Delta) error {
	if d.From != s.ETag() {
		return fmt.Errorf("%w: it starts at %s, the table in use is %s", ErrDeltaBase, d.From, s.ETag())
	}
	sum, rh, sh := s.result(d)
	if sum.ETag() != d.To {
		return fmt.Errorf("%w: %s announced, %s computed", ErrDeltaResult, d.To, sum.ETag())
	}
	for _, n := range d.RemoveRouters {
		delete(s.routers, n)
		delete(s.cfg.HTTP.Routers, n)
	}
	for n, r := range d.Routers {
		s.routers[n] = rh[n]
		s.cfg.HTTP.Routers[n] = r
	}
	for _, n := range d.RemoveServices {
		delete(s.services, n)
		delete(s.cfg.HTTP.Services, n)
	}
	for n, sv := range d.Services {
		s.services[n] = sh[n]
		s.cfg.HTTP.Services[n] = sv
	}
	s.sum = sum
	return nil
}

// Diff returns the delta from the current table to next, with From and To
// set (versions left zero). Entries are compared by value; next's entries
// are referenced, not copied.
func (s *State) Diff(next *Configuration) *Delta {
	d := &Delta{From: s.ETag(), Routers: map[string]*Router{}, Services: map[string]*Service{}}
	var nr map[string]*Router
	var ns map[string]*Service
	if next != nil && next.HTTP != nil {
		nr, ns = next.HTTP.Routers, next.HTTP.Services
	}
	for n, r := range nr {
		if r == nil {
			continue
		}
		if old, ok := s.cfg.HTTP.Routers[n]; !ok || !routerEqual(old, r) {
			d.Routers[n] = r
		}
	}
	for n := range s.cfg.HTTP.Routers {
		if r, ok := nr[n]; !ok || r == nil {
			d.RemoveRouters = append(d.RemoveRouters, n)
		}
	}
	for n, sv := range ns {
		if sv == nil {
			continue
		}
		if old, ok := s.cfg.HTTP.Services[n]; !ok || !serviceEqual(old, sv) {
			d.Services[n] = sv
		}
	}
	for n := range s.cfg.HTTP.Services {
		if sv, ok := ns[n]; !ok || sv == nil {
			d.RemoveServices = append(d.RemoveServices, n)
		}
	}
	slices.Sort(d.RemoveRouters)
	slices.Sort(d.RemoveServices)
	sum, _, _ := s.result(d)
	d.To = sum.ETag()
	return d
}

// Patch returns the delta that gives the named routers and services the
// given entries (a nil entry: absent), leaving every other entry as it is;
// entries equal to the current ones are left out. It costs O(entries
// named), where Diff costs O(table). From and To are set, versions left
// zero; the entries are referenced, not copied.
func (s *State) Patch(routers map[string]*Router, services map[string]*Service) *Delta {
	d := &Delta{From: s.ETag(), Routers: map[string]*Router{}, Services: map[string]*Service{}}
	for n, r := range routers {
		old, ok := s.cfg.HTTP.Routers[n]
		switch {
		case r == nil && ok:
			d.RemoveRouters = append(d.RemoveRouters, n)
		case r != nil && (!ok || !routerEqual(old, r)):
			d.Routers[n] = r
		}
	}
	for n, sv := range services {
		old, ok := s.cfg.HTTP.Services[n]
		switch {
		case sv == nil && ok:
			d.RemoveServices = append(d.RemoveServices, n)
		case sv != nil && (!ok || !serviceEqual(old, sv)):
			d.Services[n] = sv
		}
	}
	slices.Sort(d.RemoveRouters)
	slices.Sort(d.RemoveServices)
	sum, _, _ := s.result(d)
	d.To = sum.ETag()
	return d
}

func routerEqual(a, b *Router) bool {
	if a == b {
		return true
	}
	if a.Service != b.Service || a.Rule != b.Rule || a.Priority != b.Priority ||
		!slices.Equal(a.EntryPoints, b.EntryPoints) || !slices.Equal(a.Middlewares, b.Middlewares) {
		return false
	}
	if (a.TLS == nil) != (b.TLS == nil) {
		return false
	}
	return a.TLS == nil || *a.TLS == *b.TLS
}

func serviceEqual(a, b *Service) bool {
	if a == b {
		return true
	}
	x, y := a.LoadBalancer, b.LoadBalancer
	if x == nil || y == nil {
		return x == y
	}
	if !slices.Equal(x.Servers, y.Servers) {
		return false
	}
	if (x.PassHostHeader == nil) != (y.PassHostHeader == nil) ||
		(x.PassHostHeader != nil && *x.PassHostHeader != *y.PassHostHeader) {
		return false
	}
	if (x.ResponseForwarding == nil) != (y.ResponseForwarding == nil) {
		return false
	}
	return x.ResponseForwarding == nil || *x.ResponseForwarding == *y.ResponseForwarding
}

// ConfigETag is the ETag of a whole configuration (NewState(cfg).ETag()
// without keeping the state).
func ConfigETag(cfg *Configuration) string {
	var h hasher
	var sum Hash
	if cfg == nil || cfg.HTTP == nil {
		return sum.ETag()
	}
	for n, r := range cfg.HTTP.Routers {
		if r != nil {
			sum = sum.add(h.router(n, r))
		}
	}
	for n, sv := range cfg.HTTP.Services {
		if sv != nil {
			sum = sum.add(h.service(n, sv))
		}
	}
	return sum.ETag()
}
