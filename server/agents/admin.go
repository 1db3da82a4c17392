package agents

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
)

// TokenPrefix starts every node token, so one is recognisable (e.g. by
// secret scanners) without revealing anything.
const TokenPrefix = "nullops-node_"

// AgentImage is the image of the docker run command shown with a new token.
const AgentImage = "nullops/agent:latest"

// NewToken returns a fresh node token: 256 random bits, URL-safe base64.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// AgentDataDir is the host directory the documented docker run command
// mounts as the agent's /data (certificate, journal, state), so the
// certificate's fingerprint can be read on the node.
const AgentDataDir = "/var/lib/nullops-agent"

// DockerRunCommand is the command that starts the agent of a node with its
// token: port 5000 in the container, published on the node's port.
func DockerRunCommand(n store.Node, token string) string {
	return "docker run -d --name nullops-agent --restart unless-stopped -p " + strconv.Itoa(n.Port) + ":5000 " +
		"-e AGENT_TOKEN=" + token + " -v /var/run/docker.sock:/var/run/docker.sock " +
		"-v " + AgentDataDir + ":/data " + AgentImage
}

// ComposeCommand starts the agent of docker-compose.yml (an installation
// on one machine) with the token: it replaces AGENT_TOKEN in the .env file
// next to docker-compose.yml and starts the agent service.
func ComposeCommand(token string) string {
	return `sed -i "s/^AGENT_TOKEN=.*/AGENT_TOKEN=` + token + `/" .env && docker-compose up -d agent`
}

// Admin performs the admin actions on nodes: the token is generated here,
// stored only sealed (AES-256-GCM, bound to the node id), and returned to
// the caller once. After every change the manager (when set) acts on it at
// once: drop, establish or stop the node's connection.
type Admin struct {
	Store   *store.Store
	Box     *secretbox.Box
	Manager *Manager // nil: no live effect (the next manager start picks changes up)
}

func (a *Admin) refresh(ctx context.Context, id int64) {
	if a.Manager != nil {
		a.Manager.Refresh(context.WithoutCancel(ctx), id)
	}
}

// sealToken seals a new token for node id and stores it in tx.
func (a *Admin) sealToken(ctx context.Context, tx pgx.Tx, id int64) (store.Node, string, error) {
	tok, err := NewToken()
	if err != nil {
		return store.Node{}, "", err
	}
	enc, keyID, err := a.Box.Seal([]byte(tok), TokenAAD(id))
	if err != nil {
		return store.Node{}, "", fmt.Errorf("seal node token: %w", err)
	}
	n, err := store.SetNodeToken(ctx, tx, id, enc, keyID)
	if err != nil {
		return store.Node{}, "", err
	}
	return n, tok, nil
}

// Create adds a node and returns it with its token (the only time the
// token is returned).
func (a *Admin) Create(ctx context.Context, in store.NewNode) (store.Node, string, error) {
	var node store.Node
	var tok string
	err := a.Store.Tx(ctx, func(tx pgx.Tx) error {
		n, err := store.CreateNode(ctx, tx, in)
		if err != nil {
			return err
		}
		node, tok, err = a.sealToken(ctx, tx, n.ID)
		return err
	})
	if err != nil {
		return store.Node{}, "", err
	}
	a.refresh(ctx, node.ID)
	return node, tok, nil
}

// RotateToken replaces the node's token (also after a revocation) and
// returns the new one once. A connected agent is handed the new token's
// verifier at once and refuses the old token from then on; the connection
// is dropped and the manager redials with the new token. For an agent that
// cannot be told now the rotation stays pending (the previous token is
// kept sealed) and completes on its next connection.
func (a *Admin) RotateToken(ctx context.Context, id int64) (store.Node, string, error) {
	var node store.Node
	var tok string
	err := a.Store.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := store.LockNode(ctx, tx, id); err != nil {
			return err
		}
		var err error
		node, tok, err = a.sealToken(ctx, tx, id)
		if err != nil || !node.TokenRotationPending {
			return err
		}
		_, err = store.RecordNodeEvent(ctx, tx, store.NodeEvent{NodeID: id, Kind: store.NodeEventRotationPending,
			Message: fmt.Sprintf("token generation %d issued; the agent refuses the old token once it has been handed the new one (now if it is connected, else when it next connects)", node.TokenGeneration)})
		return err
	})
	if err != nil {
		return store.Node{}, "", err
	}
	a.refresh(ctx, id)
	return node, tok, nil
}

// Revoke disconnects the node now and tells its agent (now, or on its next
// connection while the revocation is pending), which then refuses every
// token until it is started with a new one. The node is not used again
// until its token is rotated.
func (a *Admin) Revoke(ctx context.Context, id int64) (store.Node, error) {
	n, err := store.RevokeNode(ctx, a.Store.Pool, id)
	if err != nil {
		return n, err
	}
	a.refresh(ctx, id)
	return n, nil
}

// ApproveThumbprint pins thumbprint (the one the agent last presented when
// empty) and reconnects at once.
func (a *Admin) ApproveThumbprint(ctx context.Context, id int64, thumbprint string) (store.Node, error) {
	if thumbprint == "" {
		n, err := a.Store.GetNode(ctx, id)
		if err != nil {
			return n, err
		}
		if n.SeenThumbprint == "" {
			return n, fmt.Errorf("%w: the agent has not presented a certificate yet; nothing to approve", ErrNothingToApprove)
		}
		thumbprint = n.SeenThumbprint
	}
	n, err := store.ApproveNodeThumbprint(ctx, a.Store.Pool, id, thumbprint)
	if err != nil {
		return n, err
	}
	a.refresh(ctx, id)
	return n, nil
}

// ErrNothingToApprove is returned when no thumbprint was seen yet.
var ErrNothingToApprove = fmt.Errorf("no thumbprint to approve")

// SetEnabled disables or enables a node. A disabled node drains: it stays
// connected, takes no new deployments, its deployments keep running and
// routed and can be deleted; once it is empty it can be deleted.
func (a *Admin) SetEnabled(ctx context.Context, id int64, enabled bool) (store.Node, error) {
	n, err := store.SetNodeEnabled(ctx, a.Store.Pool, id, enabled)
	if err != nil {
		return n, err
	}
	a.refresh(ctx, id)
	return n, nil
}

// Update edits a node; a new address or pinned thumbprint reconnects it.
func (a *Admin) Update(ctx context.Context, id int64, p store.NodePatch) (store.Node, error) {
	n, err := store.UpdateNode(ctx, a.Store.Pool, id, p)
	if err != nil {
		return n, err
	}
	a.refresh(ctx, id)
	return n, nil
}

// Delete removes a node without live deployments, disconnecting it.
func (a *Admin) Delete(ctx context.Context, id int64) error {
	if err := a.Store.Tx(ctx, func(tx pgx.Tx) error { return store.DeleteNode(ctx, tx, id) }); err != nil {
		return err
	}
	a.refresh(ctx, id)
	return nil
}
