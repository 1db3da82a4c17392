package ingresspub

import (
	"encoding/json"

	"github.com/nullops/nullops/ingress/dynconfig"
)

// Incremental updates for nullops-ingress (see dynconfig.Delta): every
// version keeps the delta from the one before it; an ingress naming the
// table it serves (If-None-Match) gets the composition of the deltas since
// that table when they are all still kept, the whole document otherwise.

// DefaultHistory is the default of Options.History.
const DefaultHistory = 128

// maxMerged bounds the composed deltas cached per snapshot (one per base
// version; ingresses behind by the same versions share it).
const maxMerged = 8

// recordLocked appends s to the history; the caller holds p.mu.
func (p *Publisher) recordLocked(s *Snapshot) {
	p.history = append(p.history, s)
	if n := len(p.history) - p.opts.History; n > 0 {
		clear(p.history[:n])
		p.history = append(p.history[:0], p.history[n:]...)
	}
}

// Delta returns the encoded delta from the table named by etag to snapshot
// to, or false when the whole document must be sent instead: etag is not a
// recent table of this publisher, a version in between is no longer kept,
// or the delta would change more than half of the table (the document is
// then about as small and cheaper to apply).
func (p *Publisher) Delta(etag string, to *Snapshot) ([]byte, bool) {
	p.mu.Lock()
	from, ok := p.versions[etag]
	if !ok || from >= to.Version || len(p.history) == 0 {
		p.mu.Unlock()
		return nil, false
	}
	// history holds consecutive versions ending at the newest.
	first := p.history[0].Version
	last := p.history[len(p.history)-1].Version
	if from+1 < first || to.Version > last || p.history[to.Version-first] != to {
		p.mu.Unlock()
		return nil, false
	}
	steps := make([]*dynconfig.Delta, 0, to.Version-from)
	for _, s := range p.history[from+1-first : to.Version-first+1] {
		if s.delta == nil {
			p.mu.Unlock()
			return nil, false
		}
		steps = append(steps, s.delta)
	}
	p.mu.Unlock()
	if len(steps) == 1 {
		return to.deltaBody, true
	}
	to.variantsMu.Lock()
	defer to.variantsMu.Unlock()
	if b, ok := to.merged[from]; ok {
		return b, b != nil
	}
	var body []byte
	if d, err := dynconfig.Merge(steps); err == nil &&
		d.Changes() <= (len(to.Config.HTTP.Routers)+len(to.Config.HTTP.Services))/2 {
		body, _ = json.Marshal(d)
	}
	if to.merged == nil {
		to.merged = map[int64][]byte{}
	}
	if len(to.merged) < maxMerged {
		to.merged[from] = body
	}
	return body, body != nil
}
