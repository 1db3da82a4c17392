package ingresspub

import (
	"context"
	"time"

	"github.com/nullops/nullops/server/store"
)

// Route withdrawal: before a deployment's containers stop, every ingress
// must serve a table without its routes, or requests in flight meet a
// closed port (502). nullops-ingress confirms: each of its polls carries
// its instance id and, in If-None-Match, the ETag of the table it serves.
// Ingresses that cannot confirm (Traefik's HTTP or file provider) get a
// grace period instead.

// activeWindow: an ingress that polled within this long is taken as
// serving traffic (its long-polls last at most a minute).
const activeWindow = 90 * time.Second

// Withdrawal defaults.
const (
	DefaultWithdrawGrace  = 3 * time.Second
	DefaultConfirmTimeout = 10 * time.Second
)

// remember records a published version's ETag; the caller holds p.mu.
func (p *Publisher) rememberLocked(s *Snapshot) {
	if p.versions == nil {
		p.versions = map[string]int64{}
	}
	if len(p.versions) >= 256 {
		for k, v := range p.versions {
			if v < s.Version-128 {
				delete(p.versions, k)
			}
		}
	}
	p.versions[s.ETag] = s.Version
}

// pollRewrite: a poll saying what was already recorded less than this long
// ago by this process is not written again.
const pollRewrite = 10 * time.Second

// Polled records a poll of the route table. instance is a nullops-ingress
// instance id ("" for other ingresses); etag its If-None-Match: the table
// it serves now. Polls are kept in PostgreSQL (ingress_polls), so a
// withdrawal on any server replica sees what the ingresses confirmed
// through every replica.
func (p *Publisher) Polled(instance, etag string) {
	if instance == "" {
		etag = ""
	}
	now := time.Now()
	p.mu.Lock()
	if p.written == nil {
		p.written = map[string]ingressSeen{}
	}
	w, ok := p.written[instance]
	if ok && w.etag == etag && now.Sub(w.at) < pollRewrite {
		p.mu.Unlock()
		return
	}
	if len(p.written) > 1024 {
		clear(p.written)
	}
	p.written[instance] = ingressSeen{etag: etag, at: now}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.st.RecordIngressPoll(ctx, store.IngressPoll{Instance: instance, ETag: etag, PolledAt: now}); err != nil {
		p.log.Warn().Err(err).Str("instance", instance).Msg("record ingress poll")
		p.mu.Lock()
		delete(p.written, instance)
		p.mu.Unlock()
	}
	p.pollSeen()
}

type ingressSeen struct {
	etag string
	at   time.Time
}

// pollSeen wakes the withdrawals (a poll recorded here or, through the
// change feed, by another replica).
func (p *Publisher) pollSeen() {
	p.mu.Lock()
	close(p.confirmed)
	p.confirmed = make(chan struct{})
	p.mu.Unlock()
}

// withdrawRecheck: a withdrawal looks at the recorded polls at least this
// often (a notification lost while the change feed reconnects).
const withdrawRecheck = time.Second

// Withdraw returns once every ingress serves the route table as of now:
// the table is recomputed, then each nullops-ingress that polled recently
// must confirm that version (at most ConfirmTimeout), and when other
// ingresses poll or a Traefik file is written, WithdrawGrace passes. ctx
// ending cuts it short.
func (p *Publisher) Withdraw(ctx context.Context) {
	if err := p.Recompute(ctx); err != nil {
		p.log.Warn().Err(err).Msg("recompute routes before withdrawing; waiting for the ingresses anyway")
	}
	var want int64
	if s := p.Current(); s != nil {
		want = s.Version
	}
	start := time.Now()
	grace := p.opts.File != ""
	deadline := start.Add(p.opts.ConfirmTimeout)
	for {
		p.mu.Lock()
		ch, newer := p.confirmed, p.newer
		p.mu.Unlock()
		polls, err := p.st.IngressPollsSince(ctx, start.Add(-activeWindow))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn().Err(err).Msg("read the ingresses' polls; waiting the grace instead")
			grace = true
			break
		}
		waiting := 0
		p.mu.Lock()
		for _, s := range polls {
			if s.Instance == "" {
				grace = true
				continue
			}
			// The ETag is the table's content hash, the same on every
			// replica: a table this replica published at or after want
			// confirms, whoever served it.
			if v, ok := p.versions[s.ETag]; !ok || v < want {
				waiting++
			}
		}
		p.mu.Unlock()
		if waiting == 0 {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			p.log.Warn().Int("ingresses", waiting).Int64("version", want).Dur("waited", time.Since(start)).
				Msg("ingresses did not confirm the route table in time; going on")
			break
		}
		t := time.NewTimer(min(left, withdrawRecheck))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ch:
		case <-newer:
		case <-t.C:
		}
		t.Stop()
	}
	if grace {
		t := time.NewTimer(time.Until(start.Add(p.opts.WithdrawGrace)))
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
