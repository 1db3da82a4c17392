// Package state is the agent's local, persisted view of its deployments:
// the spec each was deployed from (with every secret value and registry
// password removed) and per-step progress. It lives in its own bbolt file
// under the data dir (state.db).
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/nullops/nullops/protocol"
)

// FileName is the state file's name inside the data dir.
const FileName = "state.db"

var (
	bucketDeployments   = []byte("deployments")
	bucketPrivateImages = []byte("private_images")
	bucketDeleted       = []byte("deleted")
)

// deletedKept bounds the deleted-deployment records: marking id deleted
// drops the records of ids more than deletedKept below it. Deployment ids
// are never reused and grow with every deployment the control plane
// creates; a late deploy comes seconds or minutes after its delete, not
// thousands of deployments later.
const deletedKept = 10000

// Local deployment statuses: the protocol's plus "deleting" (rollback of a
// deleted deployment not finished yet).
const (
	StatusDeploying = protocol.StatusDeploying
	StatusRunning   = protocol.StatusRunning
	StatusFailed    = protocol.StatusFailed
	StatusDeleting  = "deleting"
	StatusDeleted   = protocol.StatusDeleted
)

// Step is the progress of one pipeline node.
type Step struct {
	Kind        string            `json:"kind"`
	Status      string            `json:"status"`
	Attempt     int               `json:"attempt"`
	Message     string            `json:"message,omitempty"`
	Outputs     map[string]string `json:"outputs,omitempty"` // secret values replaced by ${secrets.NAME}
	ContainerID string            `json:"container_id,omitempty"`
	HostPort    int               `json:"host_port,omitempty"`
	StartedAt   time.Time         `json:"started_at,omitzero"`
	FinishedAt  time.Time         `json:"finished_at,omitzero"`
}

// Deployment is the agent's record of one deployment.
type Deployment struct {
	ID         int64               `json:"id"`
	Spec       protocol.DeploySpec `json:"spec"` // Sanitized
	Status     string              `json:"status"`
	Reason     string              `json:"reason,omitempty"`
	FailedStep string              `json:"failed_step,omitempty"`
	Steps      map[string]*Step    `json:"steps"`
	UpdatedAt  time.Time           `json:"updated_at"`
}

// Store is the bbolt-backed state.
type Store struct{ db *bolt.DB }

// Open opens (or creates) the state file at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketDeployments, bucketPrivateImages, bucketDeleted} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("init state: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func key(id int64) []byte { return []byte(strconv.FormatInt(id, 10)) }

// Put writes d (its spec is sanitized again as a safety net).
func (s *Store) Put(d *Deployment) error {
	cp := *d
	cp.Spec = Sanitize(d.Spec)
	cp.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(&cp)
	if err != nil {
		return fmt.Errorf("encode deployment %d: %w", d.ID, err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeployments).Put(key(d.ID), b)
	}); err != nil {
		return fmt.Errorf("save deployment %d: %w", d.ID, err)
	}
	return nil
}

// ErrNotFound means no record for the deployment.
var ErrNotFound = errors.New("deployment not in local state")

// Get reads one deployment.
func (s *Store) Get(id int64) (*Deployment, error) {
	var d *Deployment
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeployments).Get(key(id))
		if b == nil {
			return ErrNotFound
		}
		d = &Deployment{}
		return json.Unmarshal(b, d)
	})
	if err != nil {
		return nil, fmt.Errorf("load deployment %d: %w", id, err)
	}
	return d, nil
}

// List reads every deployment.
func (s *Store) List() ([]*Deployment, error) {
	var out []*Deployment
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeployments).ForEach(func(k, v []byte) error {
			d := &Deployment{}
			if err := json.Unmarshal(v, d); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	return out, nil
}

// Delete forgets a deployment.
func (s *Store) Delete(id int64) error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeployments).Delete(key(id))
	}); err != nil {
		return fmt.Errorf("delete deployment %d: %w", id, err)
	}
	return nil
}

// MarkDeleted records that the control plane had the deployment deleted
// here, so a deploy of it that arrives late (sent before the delete, by a
// server replica that lost the node meanwhile) is refused instead of
// starting it again.
func (s *Store) MarkDeleted(id int64) error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeleted)
		k := make([]byte, 8)
		binary.BigEndian.PutUint64(k, uint64(id))
		if err := b.Put(k, []byte{1}); err != nil {
			return err
		}
		// Keys are big-endian ids, in order: drop the old ones (collected
		// first: deleting under a moving cursor can skip keys).
		var old [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) < id-deletedKept; k, _ = c.Next() {
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("mark deployment %d deleted: %w", id, err)
	}
	return nil
}

// Deleted reports whether MarkDeleted recorded the deployment.
func (s *Store) Deleted(id int64) (bool, error) {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(id))
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketDeleted).Get(k) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read deleted deployment %d: %w", id, err)
	}
	return found, nil
}

// Undelete forgets MarkDeleted (the control plane's full desired state
// wants the deployment after all).
func (s *Store) Undelete(id int64) error {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(id))
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDeleted).Delete(k) }); err != nil {
		return fmt.Errorf("undelete deployment %d: %w", id, err)
	}
	return nil
}

// MarkPrivateImage records that the local image id was pulled with
// registry credentials: before it is used again, its registry has to
// confirm the credentials of the step that wants it.
func (s *Store) MarkPrivateImage(id, ref string) error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPrivateImages).Put([]byte(id), []byte(ref))
	}); err != nil {
		return fmt.Errorf("mark private image %s: %w", ref, err)
	}
	return nil
}

// PrivateImage reports whether the local image id was pulled with
// credentials (MarkPrivateImage).
func (s *Store) PrivateImage(id string) (bool, error) {
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketPrivateImages).Get([]byte(id)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("private image %s: %w", id, err)
	}
	return found, nil
}

// Sanitize returns a deep copy of spec without secret values and registry
// credentials, fit to be written to disk.
func Sanitize(spec protocol.DeploySpec) protocol.DeploySpec {
	b, err := json.Marshal(spec)
	if err != nil {
		return protocol.DeploySpec{DeploymentID: spec.DeploymentID, Name: spec.Name}
	}
	var cp protocol.DeploySpec
	_ = json.Unmarshal(b, &cp)
	cp.Secrets = nil
	for k, s := range cp.Services {
		if s.Auth != nil {
			s.Auth = &protocol.RegistryAuth{ServerAddress: s.Auth.ServerAddress}
		}
		cp.Services[k] = s
	}
	for k, p := range cp.Plugins {
		if p.Auth != nil {
			p.Auth = &protocol.RegistryAuth{ServerAddress: p.Auth.ServerAddress}
		}
		cp.Plugins[k] = p
	}
	return cp
}
