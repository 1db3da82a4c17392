package api

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/nullops/nullops/restapi"
)

// registerFleet mounts the list of every node (admin): the fleet page.
func registerFleet(g *echo.Group, d *Deps) {
	g.GET("/nodes", d.listAllNodes, RequireAdmin)
}

// listAllNodes: GET /nodes pages through the nodes of every environment,
// with each node's environment name and reservations.
func (d *Deps) listAllNodes(c echo.Context) error {
	pg, err := PageFrom(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	nodes, total, err := d.Store.ListAllNodes(ctx, pg.Limit(), pg.Offset())
	if err != nil {
		return err
	}
	out := mapOut(nodes, d.nodeOut)
	envIDs := make([]int64, 0, len(nodes))
	for _, n := range nodes {
		envIDs = append(envIDs, n.EnvironmentID)
	}
	names, err := d.Store.EnvironmentNames(ctx, envIDs)
	if err != nil {
		return err
	}
	for i := range out {
		out[i].Environment = names[out[i].EnvironmentID]
	}
	if err := d.addReservations(ctx, out); err != nil {
		return err
	}
	return RenderList(c, out, total, pg)
}

// addReservations fills in what the live deployments of each node reserve
// (one query for the whole page).
func (d *Deps) addReservations(ctx context.Context, nodes []restapi.Node) error {
	ids := make([]int64, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	res, err := d.Store.NodeReservations(ctx, ids)
	if err != nil {
		return err
	}
	for i := range nodes {
		r := res[nodes[i].ID]
		nodes[i].Reserved = &restapi.NodeReservation{CPUs: r.CPUs, MemoryMB: r.MemoryMB, Deployments: r.Deployments}
	}
	return nil
}
