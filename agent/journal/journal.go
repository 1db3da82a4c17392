// Package journal is the agent's persisted event outbox (docs/architecture.md,
// "Server ↔ agent channel"). Every event the agent reports to the control plane is written here with
// a monotonically increasing seq BEFORE it is sent; the control plane applies
// events idempotently and acknowledges them by seq; whatever is not
// acknowledged is replayed on the next connection, across agent restarts.
//
// The journal lives in its own bbolt file (journal.db) in the data dir,
// together with the instance id: a random id generated once per data dir
// that tells the control plane when a journal (and its seq numbering) starts
// afresh.
package journal

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nullops/nullops/protocol"
)

// FileName is the journal's file name inside the data dir.
const FileName = "journal.db"

var (
	bucketMeta   = []byte("meta")
	bucketOutbox = []byte("outbox")
	keyInstance  = []byte("instance_id")
	keyAcked     = []byte("last_acked_seq")
)

// ErrNotEvent is returned by Emit for a type that is not a journaled event.
var ErrNotEvent = errors.New("not a journaled event type")

// Journal is safe for concurrent use.
type Journal struct {
	db         *bolt.DB
	instanceID string

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) by every Emit
	acked   uint64
	last    uint64 // highest seq written
}

// Open opens (creating when needed) the journal file at path.
func Open(path string) (*Journal, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	j := &Journal{db: db, changed: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		out, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		if v := meta.Get(keyInstance); len(v) > 0 {
			j.instanceID = string(v)
		} else {
			var b [16]byte
			if _, err := rand.Read(b[:]); err != nil {
				return fmt.Errorf("instance id: %w", err)
			}
			j.instanceID = hex.EncodeToString(b[:])
			if err := meta.Put(keyInstance, []byte(j.instanceID)); err != nil {
				return err
			}
		}
		if v := meta.Get(keyAcked); len(v) == 8 {
			j.acked = binary.BigEndian.Uint64(v)
		}
		j.last = out.Sequence()
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise journal %s: %w", path, err)
	}
	return j, nil
}

// Close closes the file.
func (j *Journal) Close() error { return j.db.Close() }

// InstanceID identifies this data dir's journal.
func (j *Journal) InstanceID() string { return j.instanceID }

// LastAcked is the highest seq the control plane acknowledged.
func (j *Journal) LastAcked() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.acked
}

// LastSeq is the highest seq written so far (0 when nothing was emitted).
func (j *Journal) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.last
}

// Emit journals one event and returns its seq; the event's body type names
// its message type (protocol.Event). The event is durable (fsynced) when
// Emit returns, and is delivered to the control plane at least once —
// immediately when it is connected, otherwise on the next connection — and
// applied by it exactly once.
func (j *Journal) Emit(ev protocol.Event) (uint64, error) { return j.EmitRaw(ev.EventType(), ev) }

// EmitRaw is Emit for a body that is not a protocol type (the test-only
// debug endpoint): typ must be a journaled event type (protocol.IsEvent) and
// body must encode to the matching protocol struct.
func (j *Journal) EmitRaw(typ string, body any) (uint64, error) {
	if !protocol.IsEvent(typ) {
		return 0, fmt.Errorf("emit %q: %w", typ, ErrNotEvent)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("emit %s: encode body: %w", typ, err)
	}
	// Check the event against the contract now: an event the control plane
	// would reject must fail here, not sit in the outbox forever.
	if err := protocol.ValidateEvent(protocol.Envelope{Type: typ, Seq: 1, Body: raw}); err != nil {
		return 0, fmt.Errorf("emit %s: %w", typ, err)
	}
	var seq uint64
	err = j.db.Update(func(tx *bolt.Tx) error {
		out := tx.Bucket(bucketOutbox)
		s, err := out.NextSequence()
		if err != nil {
			return err
		}
		seq = s
		v, err := json.Marshal(protocol.Envelope{Type: typ, Seq: seq, Body: raw})
		if err != nil {
			return err
		}
		return out.Put(seqKey(seq), v)
	})
	if err != nil {
		return 0, fmt.Errorf("emit %s: write journal: %w", typ, err)
	}
	j.mu.Lock()
	if seq > j.last {
		j.last = seq
	}
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
	return seq, nil
}

// Changed returns a channel closed by the next Emit. Take it before reading
// Pending so no event is missed between the read and the wait.
func (j *Journal) Changed() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.changed
}

// Pending returns up to max unacknowledged events with seq > after, in seq
// order.
func (j *Journal) Pending(after uint64, max int) ([]protocol.Envelope, error) {
	var out []protocol.Envelope
	err := j.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			var e protocol.Envelope
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode journal entry %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	return out, nil
}

// Ack records that every event with seq ≤ seq is applied by the control
// plane and drops them from the outbox. Acks never move backwards, and an
// ack beyond the last written seq is clamped to it.
func (j *Journal) Ack(seq uint64) error {
	j.mu.Lock()
	if seq > j.last {
		seq = j.last
	}
	if seq <= j.acked {
		j.mu.Unlock()
		return nil
	}
	j.mu.Unlock()
	err := j.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keyAcked); len(v) == 8 && binary.BigEndian.Uint64(v) >= seq {
			return nil
		}
		out := tx.Bucket(bucketOutbox)
		// Collect first: deleting while a bbolt cursor walks skips keys.
		var done [][]byte
		c := out.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, _ = c.Next() {
			done = append(done, append([]byte(nil), k...))
		}
		for _, k := range done {
			if err := out.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(keyAcked, seqKey(seq))
	})
	if err != nil {
		return fmt.Errorf("ack %d: %w", seq, err)
	}
	j.mu.Lock()
	if seq > j.acked {
		j.acked = seq
	}
	j.mu.Unlock()
	return nil
}

func seqKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}
