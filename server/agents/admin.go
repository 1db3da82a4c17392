package agents

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"

	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/errs"
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
// the caller once. Each action and its audit entry commit in one
// transaction (a failed audit write changes nothing); after it the manager
// (when set) acts on it at once: drop, establish or stop the node's
// connection.
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

// audit records an admin action on node n (never its token), visible to
// those who see its environment.
func audit(ctx context.Context, tx *store.Store, by store.Actor, action string, n store.Node, detail map[string]any) error {
	e := by.Entry(action, "node", n.ID, detail)
	env := n.EnvironmentID
	e.EnvironmentID = &env
	return tx.Audit(ctx, e)
}

// change runs fn and its audit entry in one transaction, then refreshes
// the node's connection.
func (a *Admin) change(ctx context.Context, id int64, fn func(tx *store.Store) error) error {
	if err := a.Store.InTx(ctx, fn); err != nil {
		return err
	}
	a.refresh(ctx, id)
	return nil
}

// sealToken seals a new token for node id and stores it in tx.
func (a *Admin) sealToken(ctx context.Context, tx *store.Store, id int64) (store.Node, string, error) {
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

// Create validates in (errs.Fields; port 0 is the default 5000), adds the
// node and returns it with its token (the only time the token is
// returned).
func (a *Admin) Create(ctx context.Context, by store.Actor, in store.NewNode) (store.Node, string, error) {
	if err := checkNewNode(&in); err != nil {
		return store.Node{}, "", err
	}
	var node store.Node
	var tok string
	err := a.Store.InTx(ctx, func(tx *store.Store) error {
		n, err := store.CreateNode(ctx, tx, in)
		if err != nil {
			return err
		}
		if node, tok, err = a.sealToken(ctx, tx, n.ID); err != nil {
			return err
		}
		return audit(ctx, tx, by, "node.create", node, map[string]any{"name": node.Name, "host": node.Host, "port": node.Port})
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
func (a *Admin) RotateToken(ctx context.Context, by store.Actor, id int64) (store.Node, string, error) {
	var node store.Node
	var tok string
	err := a.change(ctx, id, func(tx *store.Store) error {
		if _, err := store.LockNode(ctx, tx, id); err != nil {
			return err
		}
		var err error
		if node, tok, err = a.sealToken(ctx, tx, id); err != nil {
			return err
		}
		if node.TokenRotationPending {
			if _, err := store.RecordNodeEvent(ctx, tx, store.NodeEvent{NodeID: id, Kind: store.NodeEventRotationPending,
				Message: fmt.Sprintf("token generation %d issued; the agent refuses the old token once it has been handed the new one (now if it is connected, else when it next connects)", node.TokenGeneration)}); err != nil {
				return err
			}
		}
		return audit(ctx, tx, by, "node.rotate_token", node, map[string]any{"name": node.Name, "token_generation": node.TokenGeneration})
	})
	if err != nil {
		return store.Node{}, "", err
	}
	return node, tok, nil
}

// Revoke disconnects the node now and tells its agent (now, or on its next
// connection while the revocation is pending), which then refuses every
// token until it is started with a new one. The node is not used again
// until its token is rotated.
func (a *Admin) Revoke(ctx context.Context, by store.Actor, id int64) (store.Node, error) {
	var n store.Node
	err := a.change(ctx, id, func(tx *store.Store) error {
		var err error
		if n, err = store.RevokeNode(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, by, "node.revoke", n, map[string]any{"name": n.Name})
	})
	return n, err
}

// ApproveThumbprint pins thumbprint (the one the agent last presented when
// empty; a malformed one is errs.Fields) and reconnects at once.
func (a *Admin) ApproveThumbprint(ctx context.Context, by store.Actor, id int64, thumbprint string) (store.Node, error) {
	if thumbprint != "" {
		t, err := NormalizeThumbprint(thumbprint)
		if err != nil {
			return store.Node{}, errs.Field("thumbprint", "%v", err)
		}
		thumbprint = t
	}
	var n store.Node
	err := a.change(ctx, id, func(tx *store.Store) error {
		tp := thumbprint
		if tp == "" {
			cur, err := store.LockNode(ctx, tx, id)
			if err != nil {
				return err
			}
			if cur.SeenThumbprint == "" {
				return fmt.Errorf("%w: the agent has not presented a certificate yet; nothing to approve", ErrNothingToApprove)
			}
			tp = cur.SeenThumbprint
		}
		var err error
		if n, err = store.ApproveNodeThumbprint(ctx, tx, id, tp); err != nil {
			return err
		}
		return audit(ctx, tx, by, "node.approve_thumbprint", n, map[string]any{"name": n.Name, "thumbprint": n.ExpectedThumbprint})
	})
	return n, err
}

// ErrNothingToApprove is returned when no thumbprint was seen yet.
var ErrNothingToApprove = errs.Mark(errs.Conflict, "nothing_to_approve", "no thumbprint to approve")

// SetEnabled disables or enables a node. A disabled node drains: it stays
// connected, takes no new deployments, its deployments keep running and
// routed and can be deleted; once it is empty it can be deleted.
func (a *Admin) SetEnabled(ctx context.Context, by store.Actor, id int64, enabled bool) (store.Node, error) {
	action := "node.disable"
	if enabled {
		action = "node.enable"
	}
	var n store.Node
	err := a.change(ctx, id, func(tx *store.Store) error {
		var err error
		if n, err = store.SetNodeEnabled(ctx, tx, id, enabled); err != nil {
			return err
		}
		return audit(ctx, tx, by, action, n, map[string]any{"name": n.Name})
	})
	return n, err
}

// Update validates the set fields (errs.Fields) and edits a node; a new
// address or pinned thumbprint reconnects it.
func (a *Admin) Update(ctx context.Context, by store.Actor, id int64, p store.NodePatch) (store.Node, error) {
	if err := checkNodePatch(&p); err != nil {
		return store.Node{}, err
	}
	var n store.Node
	err := a.change(ctx, id, func(tx *store.Store) error {
		var err error
		if n, err = store.UpdateNode(ctx, tx, id, p); err != nil {
			return err
		}
		return audit(ctx, tx, by, "node.update", n, map[string]any{"name": n.Name, "host": n.Host, "port": n.Port})
	})
	return n, err
}

// Delete removes a node without live deployments, disconnecting it.
func (a *Admin) Delete(ctx context.Context, by store.Actor, id int64) error {
	return a.change(ctx, id, func(tx *store.Store) error {
		n, err := store.LockNode(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := store.DeleteNode(ctx, tx, id); err != nil {
			return err
		}
		return audit(ctx, tx, by, "node.delete", n, map[string]any{"name": n.Name})
	})
}

// DefaultAgentPort is the port of a node created without one.
const DefaultAgentPort = 5000

var (
	nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
)

func checkNodeName(v errs.Fields, name string) {
	if !nodeNameRE.MatchString(name) {
		v.Add("name", "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
}

func checkNodeHost(v errs.Fields, host string) {
	if !protocol.ValidHost(host) {
		v.Add("host", "a host name or IP address the server can reach the agent at (no scheme, no port)")
	}
}

func checkNodePort(v errs.Fields, port int) {
	if port < 1 || port > 65535 {
		v.Add("port", "must be 1..65535")
	}
}

// checkThumbprint normalizes a non-empty expected thumbprint.
func checkThumbprint(v errs.Fields, tp *string) {
	if *tp == "" {
		return
	}
	t, err := NormalizeThumbprint(*tp)
	if err != nil {
		v.Add("expected_thumbprint", "%v", err)
	}
	*tp = t
}

func checkLabels(v errs.Fields, labels map[string]string) {
	if len(labels) > 64 {
		v.Add("labels", "at most 64 labels")
	}
	for k, val := range labels {
		if !labelKeyRE.MatchString(k) {
			v.Add("labels", "key %q: 1-63 letters, digits, '.', '_', '/' or '-', starting and ending with a letter or digit", k)
		}
		if len(val) > 253 {
			v.Add("labels", "value of %q: at most 253 characters", k)
		}
	}
}

// checkNewNode validates a node to create, defaulting its port and
// normalizing its thumbprint.
func checkNewNode(in *store.NewNode) error {
	if in.Port == 0 {
		in.Port = DefaultAgentPort
	}
	v := errs.Fields{}
	checkNodeName(v, in.Name)
	checkNodeHost(v, in.Host)
	checkNodePort(v, in.Port)
	checkThumbprint(v, &in.ExpectedThumbprint)
	checkLabels(v, in.Labels)
	return v.Err()
}

// checkNodePatch validates the set fields of a node's change.
func checkNodePatch(p *store.NodePatch) error {
	v := errs.Fields{}
	if p.Name != nil {
		checkNodeName(v, *p.Name)
	}
	if p.Host != nil {
		checkNodeHost(v, *p.Host)
	}
	if p.Port != nil {
		checkNodePort(v, *p.Port)
	}
	if p.ExpectedThumbprint != nil {
		tp := *p.ExpectedThumbprint
		checkThumbprint(v, &tp)
		p.ExpectedThumbprint = &tp
	}
	if p.Labels != nil {
		checkLabels(v, *p.Labels)
	}
	return v.Err()
}
