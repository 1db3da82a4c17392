package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/auth"
	"github.com/nullops/nullops/server/store"
)

// registerNodes mounts the node routes (docs/architecture.md, "Server ↔ agent channel"): anyone who
// can read an environment sees its nodes; every change is admin-only. A
// node's token is in the response of create and rotate-token only.
func registerNodes(g *echo.Group, d *Deps) {
	g.GET("/environments/:id/nodes", d.listNodes)
	g.POST("/environments/:id/nodes", d.createNode, RequireAdmin)
	g.GET("/nodes/:id", d.getNode)
	g.GET("/nodes/:id/events", d.listNodeEvents, RequireAdmin)
	g.PATCH("/nodes/:id", d.updateNode, RequireAdmin)
	g.DELETE("/nodes/:id", d.deleteNode, RequireAdmin)
	g.POST("/nodes/:id/rotate-token", d.rotateNodeToken, RequireAdmin)
	g.POST("/nodes/:id/revoke", d.revokeNode, RequireAdmin)
	g.POST("/nodes/:id/approve-thumbprint", d.approveNodeThumbprint, RequireAdmin)
	g.POST("/nodes/:id/disable", d.disableNode, RequireAdmin)
	g.POST("/nodes/:id/enable", d.enableNode, RequireAdmin)
}

// nodeOut is a node as admins see it: the row, whether the manager holds a
// live connection right now and when it last heard from the agent.
//
// A node held by another replica (docs/architecture.md, "Replicas and node
// leases") is connected when its row says online under a live lease; the
// one this replica holds has the live view.
func (d *Deps) nodeOut(n store.Node) restapi.Node {
	out := restapi.Node{ID: n.ID, EnvironmentID: n.EnvironmentID, Name: n.Name, UID: n.UID, Host: n.Host, Port: n.Port,
		TokenGeneration: n.TokenGeneration, ExpectedThumbprint: n.ExpectedThumbprint, SeenThumbprint: n.SeenThumbprint,
		Status: n.Status, StatusReason: n.StatusReason, Enabled: n.Enabled, Revoked: n.Revoked, Labels: n.Labels,
		AgentVersion: n.AgentVersion, ProtocolVersion: n.ProtocolVersion, AgentInstance: n.AgentInstance,
		Capacity: restapi.NodeCapacity{CPUs: n.Capacity.CPUs, MemoryMB: n.Capacity.MemoryMB, DiskMB: n.Capacity.DiskMB},
		Usage: restapi.NodeUsage{CPUPercent: n.Usage.CPUPercent, CPUsUsed: n.Usage.CPUsUsed, OtherCPUs: n.Usage.OtherCPUs,
			MemoryUsedMB: n.Usage.MemoryUsedMB, DiskUsedMB: n.Usage.DiskUsedMB},
		LastAckedSeq: n.LastAckedSeq, LastSeenAt: n.LastSeenAt, UnreachableSince: n.UnreachableSince,
		CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt, ConnEpoch: n.ConnEpoch,
		TokenRotationPending: n.TokenRotationPending, TokenRevokePending: n.TokenRevokePending,
		Connected: n.Status == store.NodeOnline && n.LeaseLive}
	if d.Agents != nil {
		if st, ok := d.Agents.State(n.ID); ok {
			out.Connected = st.Connected
			if !st.LastSeen.IsZero() && (n.LastSeenAt == nil || st.LastSeen.After(*n.LastSeenAt)) {
				seen := st.LastSeen.UTC().Truncate(time.Microsecond)
				out.LastSeenAt = &seen
			}
		}
	}
	return out
}

// nodeCreated is the answer of create and rotate-token: the only time the
// token is shown, with the commands that start the agent.
func (d *Deps) nodeCreated(n store.Node, tok string) restapi.NodeCreated {
	return restapi.NodeCreated{Node: d.nodeOut(n), Token: tok, DockerRun: agents.DockerRunCommand(n, tok), Compose: agents.ComposeCommand(tok)}
}

// userNodeOut is a node as users who are not admins see it: whether it
// is there and working, not where it is, what it holds or how its identity
// is pinned. Capacity, usage, host, port, thumbprints and status reasons
// (which name addresses) are admin-only; a deployment that does not fit
// still names the short resource in its 409.
func (d *Deps) userNodeOut(n store.Node) restapi.UserNode {
	o := d.nodeOut(n)
	return restapi.UserNode{ID: o.ID, EnvironmentID: o.EnvironmentID, Name: o.Name, Status: o.Status, Enabled: o.Enabled,
		Revoked: o.Revoked, Labels: o.Labels, AgentVersion: o.AgentVersion, Connected: o.Connected,
		LastSeenAt: o.LastSeenAt, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

func (d *Deps) listNodes(c echo.Context) error {
	envID, err := PathID(c, "id")
	if err != nil {
		return err
	}
	if err := RequireLevel(c, 0, envID, auth.Read); err != nil {
		return err
	}
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ok, err := d.Store.EnvironmentExists(ctx, envID)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	nodes, total, err := d.Store.ListNodes(ctx, envID, pg.Limit(), pg.Offset())
	if err != nil {
		return err
	}
	if !PrincipalFrom(c).Admin {
		return RenderList(c, mapOut(nodes, d.userNodeOut), total, pg)
	}
	out := mapOut(nodes, d.nodeOut)
	if err := d.addReservations(ctx, out); err != nil {
		return err
	}
	return RenderList(c, out, total, pg)
}

func (d *Deps) createNode(c echo.Context) error {
	envID, err := PathID(c, "id")
	if err != nil {
		return err
	}
	var req restapi.NodeRequest
	if err := Bind(c, &req); err != nil {
		return err
	}
	n, tok, err := d.Nodes.Create(c.Request().Context(), actor(c), store.NewNode{EnvironmentID: envID, Name: req.Name, Host: req.Host,
		Port: req.Port, ExpectedThumbprint: req.ExpectedThumbprint, Labels: req.Labels})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, d.nodeCreated(n, tok))
}

// loadNode reads the node of the path and checks the caller may see it
// (read on its environment); 404 otherwise.
func (d *Deps) loadNode(c echo.Context) (store.Node, error) {
	id, err := PathID(c, "id")
	if err != nil {
		return store.Node{}, err
	}
	n, err := d.Store.GetNode(c.Request().Context(), id)
	if err != nil {
		return n, err
	}
	if err := RequireLevel(c, 0, n.EnvironmentID, auth.Read); err != nil {
		return n, err
	}
	return n, nil
}

func (d *Deps) getNode(c echo.Context) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	if !PrincipalFrom(c).Admin {
		return c.JSON(http.StatusOK, d.userNodeOut(n))
	}
	out := []restapi.Node{d.nodeOut(n)}
	if err := d.addReservations(c.Request().Context(), out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out[0])
}

// listNodeEvents: GET /nodes/{id}/events (admin) pages through the node's
// channel history, newest first: connections the agent refused or replaced,
// this server's connections the agent refused, token rotations and
// revocations as they reached the agent.
func (d *Deps) listNodeEvents(c echo.Context) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	items, total, err := d.Store.ListNodeEvents(c.Request().Context(), n.ID, pg.Limit(), pg.Offset())
	if err != nil {
		return err
	}
	return RenderList(c, mapOut(items, nodeEventOut), total, pg)
}

func (d *Deps) updateNode(c echo.Context) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	var req restapi.NodePatch
	if err := Bind(c, &req); err != nil {
		return err
	}
	out, err := d.Nodes.Update(c.Request().Context(), actor(c), n.ID, store.NodePatch{Name: req.Name, Host: req.Host, Port: req.Port,
		ExpectedThumbprint: req.ExpectedThumbprint, Labels: req.Labels})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d.nodeOut(out))
}

func (d *Deps) deleteNode(c echo.Context) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	if err := d.Nodes.Delete(c.Request().Context(), actor(c), n.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (d *Deps) rotateNodeToken(c echo.Context) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	out, tok, err := d.Nodes.RotateToken(c.Request().Context(), actor(c), n.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d.nodeCreated(out, tok))
}

func (d *Deps) revokeNode(c echo.Context) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	out, err := d.Nodes.Revoke(c.Request().Context(), actor(c), n.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d.nodeOut(out))
}

func (d *Deps) approveNodeThumbprint(c echo.Context) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	var req restapi.ThumbprintApproval
	body, err := ReadBody(c.Request().Body)
	if err != nil {
		return bodyError(err)
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := DecodeJSON(strings.NewReader(string(body)), &req); err != nil {
			return bodyError(err)
		}
	}
	out, err := d.Nodes.ApproveThumbprint(c.Request().Context(), actor(c), n.ID, req.Thumbprint)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d.nodeOut(out))
}

func (d *Deps) disableNode(c echo.Context) error { return d.setNodeEnabled(c, false) }

func (d *Deps) enableNode(c echo.Context) error { return d.setNodeEnabled(c, true) }

func (d *Deps) setNodeEnabled(c echo.Context, enabled bool) error {
	n, err := d.loadNode(c)
	if err != nil {
		return err
	}
	out, err := d.Nodes.SetEnabled(c.Request().Context(), actor(c), n.ID, enabled)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d.nodeOut(out))
}
