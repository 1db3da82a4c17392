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

// maxHistoryBytes bounds the encoded deltas kept (a change of a whole
// environment is as large as the document).
const maxHistoryBytes = 32 << 20

// step is one version in the history: only its delta is kept, not the
// table (a snapshot of 10,000 routes holds megabytes).
type step struct {
	version int64
	delta   *dynconfig.Delta // from version-1; nil for a publisher's first version
	body    []byte           // delta encoded
}

// recordLocked appends s's delta to the history; the caller holds p.mu.
func (p *Publisher) recordLocked(s *Snapshot) {
	p.history = append(p.history, step{version: s.Version, delta: s.delta, body: s.deltaBody})
	p.historyBytes += len(s.deltaBody)
	drop := 0
	for len(p.history)-drop > p.opts.History || (p.historyBytes > maxHistoryBytes && len(p.history)-drop > 1) {
		p.historyBytes -= len(p.history[drop].body)
		drop++
	}
	if drop > 0 {
		clear(p.history[:drop])
		p.history = append(p.history[:0], p.history[drop:]...)
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
	first := p.history[0].version
	last := p.history[len(p.history)-1].version
	if from+1 < first || to.Version > last {
		p.mu.Unlock()
		return nil, false
	}
	steps := make([]*dynconfig.Delta, 0, to.Version-from)
	for _, st := range p.history[from+1-first : to.Version-first+1] {
		if st.delta == nil {
			p.mu.Unlock()
			return nil, false
		}
		steps = append(steps, st.delta)
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
	if d, err := dynconfig.Merge(steps); err == nil && d.To == to.ETag &&
		d.Changes() <= to.entries/2 {
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
