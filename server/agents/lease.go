package agents

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/nullops/nullops/server/store"
)

// Replicas and node leases (docs/architecture.md, "Replicas and node
// leases"). Every replica runs one lease loop:
//
//   - every LeaseTTL/3 it heartbeats its replica row and renews the leases
//     of the nodes it holds; a node whose lease did not come back was taken
//     over (or deleted) and its goroutine stops. Without a successful
//     renewal before the local deadline (start of the last successful
//     renewal + LeaseTTL) it drops every connection itself;
//   - every tick it lists the live replicas and the node leases, and takes
//     the free leases of the nodes that prefer it (rendezvous hashing of
//     the node id over the live replica ids), plus any lease free for
//     longer than LeaseTTL whoever it prefers, so no node stays orphaned;
//   - a node it holds that now prefers another live replica (one joined
//     and stayed up for a lease TTL: candidates) is handed over: its
//     connection is closed, then its lease released; the preferred replica
//     takes it on its next tick.

// leaseState is the lease loop's state.
type leaseState struct {
	kick chan struct{}

	mu       sync.Mutex
	deadline time.Time // connections must be dropped after it without a renewal
	renewed  time.Time // start of the last successful renewal
	live     []string  // live replica ids at the last balance
	handing  map[int64]bool
}

func newReplicaID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (m *Manager) kickLeases() {
	select {
	case m.leases.kick <- struct{}{}:
	default:
	}
}

// tick is how often the lease loop balances: a tenth of the lease TTL, so
// an expired lease is taken well within the failover target.
func (m *Manager) tick() time.Duration { return max(m.o.LeaseTTL/10, 20*time.Millisecond) }

func (m *Manager) leaseLoop(ctx context.Context) {
	t := time.NewTicker(m.tick())
	defer t.Stop()
	lastWake := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.leases.kick:
		}
		if m.frozen.Load() {
			continue
		}
		m.leases.mu.Lock()
		renewed, deadline := m.leases.renewed, m.leases.deadline
		m.leases.mu.Unlock()
		if time.Now().After(deadline) {
			m.dropAll("the node leases were not renewed before they expired")
		}
		if time.Since(renewed) >= m.o.LeaseTTL/3 {
			m.renew(ctx)
		}
		if err := m.balance(ctx); err != nil && ctx.Err() == nil {
			m.o.Log.Warn().Err(err).Msg("balance node leases")
		}
		if time.Since(lastWake) >= m.o.RescanInterval {
			// Changes made outside this process (an admin's edit on a
			// replica that could not tell this one) reach the nodes.
			lastWake = time.Now()
			m.mu.Lock()
			for _, n := range m.nodes {
				n.wake()
			}
			m.mu.Unlock()
		}
	}
}

// heldIDs lists the nodes whose goroutine runs here.
func (m *Manager) heldIDs() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]int64, 0, len(m.nodes))
	for id := range m.nodes {
		ids = append(ids, id)
	}
	return ids
}

// renew heartbeats and renews the held leases; the nodes whose lease did
// not come back are dropped.
func (m *Manager) renew(ctx context.Context) {
	start := time.Now()
	alive, err := m.leaseStore.HeartbeatReplica(ctx, m.o.ReplicaID, m.o.LeaseTTL)
	if err == nil && !alive {
		// Pruned as dead while paused: every lease is gone.
		m.o.Log.Warn().Msg("this replica was taken for dead; registering again")
		err = m.leaseStore.RegisterReplica(ctx, m.o.ReplicaID, m.o.AdvertiseURL, m.o.LeaseTTL)
	}
	if err != nil {
		if ctx.Err() == nil {
			m.o.Log.Warn().Err(err).Msg("replica heartbeat")
		}
		return
	}
	held := m.heldIDs()
	still, err := m.leaseStore.OwnedNodes(ctx, m.o.ReplicaID, held)
	if err != nil {
		if ctx.Err() == nil {
			m.o.Log.Warn().Err(err).Msg("check node leases")
		}
		return
	}
	m.leases.mu.Lock()
	m.leases.renewed, m.leases.deadline = start, start.Add(m.o.LeaseTTL)
	m.leases.mu.Unlock()
	kept := make(map[int64]bool, len(still))
	for _, id := range still {
		kept[id] = true
	}
	for _, id := range held {
		if !kept[id] {
			m.drop(id, false, "the node's lease was taken over by another replica")
		}
	}
}

// balance takes the free leases this replica should hold and hands over
// the nodes that prefer another live replica.
func (m *Manager) balance(ctx context.Context) error {
	reps, err := m.leaseStore.LiveReplicas(ctx, m.o.LeaseTTL)
	if err != nil {
		return err
	}
	live := candidates(reps, m.o.ReplicaID, m.o.LeaseTTL)
	m.leases.mu.Lock()
	m.leases.live = live
	m.leases.mu.Unlock()
	leases, err := m.leaseStore.NodeLeases(ctx, m.o.LeaseTTL)
	if err != nil {
		return err
	}
	var take, release []int64
	for _, l := range leases {
		pref := preferred(l.NodeID, live)
		if m.node(l.NodeID) != nil {
			if pref != m.o.ReplicaID && l.Owner == m.o.ReplicaID {
				m.handOver(l.NodeID, pref)
			}
			continue
		}
		mine := l.Owner == m.o.ReplicaID // recorded as ours, but not run here (dropped)
		switch {
		case (l.Free || mine) && (pref == m.o.ReplicaID || l.FreeLong):
			take = append(take, l.NodeID)
		case mine && !l.Free:
			// Our lease lives as long as we do: give it to the node's
			// preferred replica instead of leaving the node unconnected.
			release = append(release, l.NodeID)
		}
	}
	for _, id := range release {
		if err := m.leaseStore.ReleaseNodeLease(ctx, m.o.ReplicaID, id); err != nil {
			return err
		}
	}
	got, err := m.leaseStore.AcquireNodeLeases(ctx, m.o.ReplicaID, take)
	if err != nil {
		return err
	}
	for _, a := range got {
		m.o.Log.Info().Int64("node_id", a.NodeID).Int64("epoch", a.Epoch).Msg("node lease taken")
		m.ensure(a.NodeID, a.Status, a.Epoch)
	}
	return nil
}

// candidates are the replicas nodes may prefer: the live ones registered
// for at least settle, by PostgreSQL's clock, so a replica that restarts
// over and over (or came back from a pause and registered again) does not
// pull nodes towards it each time it appears; every live one (self
// included) while none is settled, as when the replicas start together.
// Every replica computes the same set from the same rows.
func candidates(reps []store.Replica, self string, settle time.Duration) []string {
	var settled, live []string
	seen := false
	for _, r := range reps {
		live = append(live, r.ID)
		seen = seen || r.ID == self
		if r.Up >= settle {
			settled = append(settled, r.ID)
		}
	}
	if len(settled) > 0 {
		return settled
	}
	if !seen {
		live = append(live, self)
	}
	return live
}

// preferred is the replica a node prefers among live: the highest
// rendezvous hash of (node, replica). When a replica joins or leaves, only
// the nodes that prefer it (or preferred it) move.
func preferred(nodeID int64, live []string) string {
	best, bestH := "", uint64(0)
	for _, r := range live {
		h := fnv.New64a()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(nodeID))
		h.Write(b[:])
		h.Write([]byte(r))
		v := mix(h.Sum64())
		if best == "" || v > bestH || (v == bestH && r < best) {
			best, bestH = r, v
		}
	}
	return best
}

// mix is the splitmix64 finalizer: FNV of nearby inputs differs in few
// bits, and rendezvous hashing needs the full range.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// handOver closes the node's connection and releases its lease so the
// replica it prefers takes it at once (a replica joined).
func (m *Manager) handOver(id int64, to string) {
	m.leases.mu.Lock()
	if m.leases.handing == nil {
		m.leases.handing = map[int64]bool{}
	}
	if m.leases.handing[id] {
		m.leases.mu.Unlock()
		return
	}
	m.leases.handing[id] = true
	m.leases.mu.Unlock()
	m.o.Log.Info().Int64("node_id", id).Str("to", to).Msg("handing the node over to the replica it prefers")
	m.drop(id, true, "handed over to replica "+to)
}

// drop stops the node's goroutine (closing its connection) and, when
// release is set, then releases its lease. It does not wait.
func (m *Manager) drop(id int64, release bool, why string) {
	n := m.node(id)
	if n == nil {
		return
	}
	if !release {
		n.setLost()
	}
	m.o.Log.Warn().Int64("node_id", id).Bool("release", release).Str("why", why).Msg("dropping the node")
	n.cancel()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		<-n.done
		if release {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := m.o.Store.ReleaseNodeLease(ctx, m.o.ReplicaID, id); err != nil {
				m.o.Log.Warn().Err(err).Int64("node_id", id).Msg("release node lease")
			}
		}
		m.leases.mu.Lock()
		delete(m.leases.handing, id)
		m.leases.mu.Unlock()
		m.kickLeases()
	}()
}

// dropAll drops every node without releasing (the leases could not be
// renewed: another replica may hold them by now).
func (m *Manager) dropAll(why string) {
	for _, id := range m.heldIDs() {
		m.drop(id, false, why)
	}
}

// Owner returns the id and internal URL of the replica holding the node's
// live lease (this one included), or store.ErrNotFound when none does.
func (m *Manager) Owner(ctx context.Context, nodeID int64) (store.Replica, error) {
	if m.node(nodeID) != nil {
		return store.Replica{ID: m.o.ReplicaID, APIURL: m.o.AdvertiseURL}, nil
	}
	o, err := m.o.Store.GetNodeOwner(ctx, nodeID)
	if err != nil {
		return store.Replica{}, err
	}
	return o.Replica, nil
}

// LiveReplicas is the live replica ids the lease loop last saw.
func (m *Manager) LiveReplicas() []string {
	m.leases.mu.Lock()
	defer m.leases.mu.Unlock()
	return append([]string(nil), m.leases.live...)
}

// Held lists the nodes this replica holds now, by id.
func (m *Manager) Held() []int64 {
	ids := m.heldIDs()
	slices.Sort(ids)
	return ids
}
