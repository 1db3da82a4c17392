package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Deployment statuses (docs/architecture.md, "Deployments").
const (
	DeploymentPending   = "pending"
	DeploymentDeploying = "deploying"
	DeploymentRunning   = "running"
	DeploymentFailed    = "failed"
	DeploymentOffline   = "offline"
	DeploymentDeleting  = "deleting"
	DeploymentDeleted   = "deleted"
)

// reservingStatuses are the statuses whose CPU and memory count as allocated
// on their node (a failed deployment has been rolled back).
var reservingStatuses = []string{DeploymentPending, DeploymentDeploying, DeploymentRunning, DeploymentOffline, DeploymentDeleting}

// Deployment is one row of deployments with the names of what it refers to.
type Deployment struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	ProjectID       int64  `json:"project_id"`
	ProjectName     string `json:"project"`
	EnvironmentID   int64  `json:"environment_id"`
	EnvironmentName string `json:"environment"`
	BaseDomain      string `json:"-"`
	HostTemplate    string `json:"-"`
	NodeID          *int64 `json:"node_id"`
	NodeName        string `json:"node"`
	NodeStatus      string `json:"node_status"`
	// NodeUnreachableSince is when the node's agent stopped answering (nil
	// while it answers): the deployment stays routed for a grace period.
	NodeUnreachableSince *time.Time        `json:"node_unreachable_since"`
	NodeHost             string            `json:"-"`
	PipelineVersionID    int64             `json:"-"`
	PipelineVersion      int               `json:"pipeline_version"`
	Status               string            `json:"status"`
	StatusReason         string            `json:"reason"`
	FailedStep           string            `json:"failed_step"`
	OwnerID              *int64            `json:"owner_id"`
	OwnerName            string            `json:"owner"`
	ClonedFrom           *int64            `json:"cloned_from"`
	Tags                 map[string]string `json:"tags"`
	CPU                  float64           `json:"cpu"`
	MemoryMB             int64             `json:"memory_mb"`
	TTLSeconds           int64             `json:"ttl_seconds"`
	LastActivityAt       time.Time         `json:"last_activity_at"`
	ExpiresAt            time.Time         `json:"expires_at"`
	DeletePending        bool              `json:"delete_pending"`
	CreatedAt            time.Time         `json:"created_at"`
	UpdatedAt            time.Time         `json:"updated_at"`
	DeletedAt            *time.Time        `json:"deleted_at"`
}

const deploymentColumns = `d.id, d.name, d.project_id, p.name, d.environment_id, e.name, e.base_domain, e.host_template,
	d.node_id, COALESCE(n.name, ''), COALESCE(n.status, ''), n.unreachable_since, COALESCE(n.host, ''),
	d.pipeline_version_id, pv.version, d.status, d.status_reason, d.failed_step,
	d.owner_id, COALESCE(u.username, ''), d.cloned_from, d.tags, d.cpu, d.memory_mb, d.ttl_seconds,
	d.last_activity_at, d.expires_at, d.delete_pending, d.created_at, d.updated_at, d.deleted_at`

const deploymentFrom = ` FROM deployments d
	JOIN projects p ON p.id = d.project_id
	JOIN environments e ON e.id = d.environment_id
	JOIN pipeline_versions pv ON pv.id = d.pipeline_version_id
	LEFT JOIN nodes n ON n.id = d.node_id
	LEFT JOIN users u ON u.id = d.owner_id`

func scanDeployment(row pgx.Row) (Deployment, error) {
	var sc deploymentScan
	return sc.scan(row)
}

// deploymentScan scans rows of deploymentColumns followed by what a
// statement selects after them (extra), reusing one list of destinations
// for every row of a query.
type deploymentScan struct {
	d    Deployment
	tags []byte
	dest []any
}

func newDeploymentScan(extra ...any) *deploymentScan {
	sc := &deploymentScan{}
	sc.init(extra)
	return sc
}

func (sc *deploymentScan) init(extra []any) {
	d := &sc.d
	sc.dest = append([]any{&d.ID, &d.Name, &d.ProjectID, &d.ProjectName, &d.EnvironmentID, &d.EnvironmentName, &d.BaseDomain, &d.HostTemplate,
		&d.NodeID, &d.NodeName, &d.NodeStatus, &d.NodeUnreachableSince, &d.NodeHost,
		&d.PipelineVersionID, &d.PipelineVersion, &d.Status, &d.StatusReason, &d.FailedStep,
		&d.OwnerID, &d.OwnerName, &d.ClonedFrom, &sc.tags, &d.CPU, &d.MemoryMB, &d.TTLSeconds,
		&d.LastActivityAt, &d.ExpiresAt, &d.DeletePending, &d.CreatedAt, &d.UpdatedAt, &d.DeletedAt}, extra...)
}

func (sc *deploymentScan) scan(row pgx.Row) (Deployment, error) {
	if sc.dest == nil {
		sc.init(nil)
	}
	// Pointer fields are set to nil or to a new value by every scan, so
	// rows never share them.
	sc.d, sc.tags = Deployment{}, nil
	if err := row.Scan(sc.dest...); err != nil {
		return sc.d, notFound(err)
	}
	d := sc.d
	d.Tags = map[string]string{}
	if len(sc.tags) > 0 && string(sc.tags) != "{}" {
		if err := json.Unmarshal(sc.tags, &d.Tags); err != nil {
			return d, fmt.Errorf("decode tags of deployment %d: %w", d.ID, err)
		}
	}
	return d, nil
}

// GetDeployment loads one deployment (deleted ones included).
func (s *Store) GetDeployment(ctx context.Context, id int64) (Deployment, error) {
	d, err := scanDeployment(s.db.QueryRow(ctx, "SELECT "+deploymentColumns+deploymentFrom+" WHERE d.id = $1", id))
	if err != nil {
		return d, fmt.Errorf("get deployment %d: %w", id, err)
	}
	return d, nil
}

// LockDeployment loads a deployment and locks its row until tx ends.
func LockDeployment(ctx context.Context, tx Querier, id int64) (Deployment, error) {
	d, err := scanDeployment(tx.QueryRow(ctx, "SELECT "+deploymentColumns+deploymentFrom+" WHERE d.id = $1 FOR UPDATE OF d", id))
	if err != nil {
		return d, fmt.Errorf("lock deployment %d: %w", id, err)
	}
	return d, nil
}

// DeploymentFilter selects deployments for a list.
type DeploymentFilter struct {
	// VisibleTo restricts the list to deployments whose project or
	// environment is granted (read or full) to a team of this user; nil
	// means no restriction (admins).
	VisibleTo     *int64
	ProjectID     int64
	EnvironmentID int64
	NodeID        int64
	Status        string // "" = every status but deleted
	// Query keeps deployments whose name contains it (case-insensitive).
	Query string
	// OwnerID keeps the deployments this user created ("mine").
	OwnerID int64
	// Sort is one of DeploymentSorts ("" = newest first); Desc reverses it.
	Sort   string
	Desc   bool
	Limit  int
	Offset int
}

// DeploymentSorts are the columns a deployment list can be sorted by, with
// the SQL expression of each; ties are broken by id in the same direction
// (ascending: oldest first).
var DeploymentSorts = map[string]string{
	"name":        "d.name",
	"status":      "d.status",
	"project":     "p.name",
	"environment": "e.name",
	"owner":       "COALESCE(u.username, '')",
	"created":     "d.id",
	"expires":     "d.expires_at",
}

// DeploymentCountCap bounds the total a deployment list counts: past it
// (and past the page asked for) ListDeployments stops counting and reports
// the total as capped, so a list's cost does not grow with the table.
const DeploymentCountCap = 1000

// DeploymentListItem is one row of a deployment list with what the list
// shows next to it, read by the same statement as the row.
type DeploymentListItem struct {
	Deployment
	// GrantRank is the highest level a team of the filter's VisibleTo
	// user holds on the deployment's project or environment, as
	// UserGrantLevel ranks it (2 full, 1 read); 0 without VisibleTo.
	GrantRank int
	// IngressKeys are the pipeline node ids of the services exposed
	// through the ingress, ascending.
	IngressKeys []string
	// Crashed are, for a running deployment, its services that reported a
	// crash (a state restarting, exited or oom-killed, or an exit), with
	// their crash details; nil otherwise.
	Crashed []DeploymentService
}

// ListDeployments is ListDeploymentPage without what the list shows next
// to each deployment.
func (s *Store) ListDeployments(ctx context.Context, f DeploymentFilter) (page []Deployment, total int, capped bool, err error) {
	items, total, capped, err := s.ListDeploymentPage(ctx, f)
	if err != nil {
		return nil, 0, false, err
	}
	page = make([]Deployment, len(items))
	for i, it := range items {
		page[i] = it.Deployment
	}
	return page, total, capped, nil
}

// ListDeploymentPage pages through deployments, newest first unless
// sorted, and returns the total number matching the filter. The total is
// exact up to max(DeploymentCountCap, Offset+Limit); beyond that capped is
// true and total is that bound: there are more than total deployments.
//
// One statement reads the caller's grants, the page, its total and what
// the list shows next to each row (docs/architecture.md, "REST API and
// UI"). Its plan does not depend on its arguments, so PostgreSQL plans it
// once per connection (a cached generic plan): page size, offset and count
// bound are literals (integers computed here), and a user's visibility is
// walked grant by grant, each through the index of its project or
// environment, never as one array filter whose size a generic plan would
// have to guess.
func (s *Store) ListDeploymentPage(ctx context.Context, f DeploymentFilter) (page []DeploymentListItem, total int, capped bool, err error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var user string
	if f.VisibleTo != nil {
		user = arg(*f.VisibleTo)
	}
	if f.ProjectID != 0 {
		where = append(where, "d.project_id = "+arg(f.ProjectID))
	}
	if f.EnvironmentID != 0 {
		where = append(where, "d.environment_id = "+arg(f.EnvironmentID))
	}
	if f.NodeID != 0 {
		where = append(where, "d.node_id = "+arg(f.NodeID))
	}
	if f.Status != "" {
		where = append(where, "d.status = "+arg(f.Status))
	}
	if f.Status != DeploymentDeleted {
		// Also with a status: it is what the partial indexes of live
		// rows need to see in a generic plan.
		where = append(where, "d.status <> 'deleted'")
	}
	if f.OwnerID != 0 {
		where = append(where, "d.owner_id = "+arg(f.OwnerID))
	}
	if f.Query != "" {
		where = append(where, "d.name ILIKE "+arg("%"+likeEscape(f.Query)+"%"))
	}
	order, sortJoin := "d.id DESC", ""
	if f.Sort != "" {
		col, ok := DeploymentSorts[f.Sort]
		if !ok {
			return nil, 0, false, fmt.Errorf("list deployments: unknown sort %q", f.Sort)
		}
		dir := " ASC"
		if f.Desc {
			dir = " DESC"
		}
		order = col + dir + ", d.id" + dir
		if f.Sort == "created" {
			order = "d.id" + dir
		}
		sortJoin = deploymentSortJoins[f.Sort]
	}
	cond := strings.Join(where, " AND ")
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	offset := max(f.Offset, 0)
	bound := max(DeploymentCountCap, offset+limit)
	lim := func(n int) string { return " LIMIT " + strconv.Itoa(n) }

	// pick is the page's ids (pg), counted is the bounded count; with
	// starts the statement (a user's grants).
	var with, pick, counted string
	rank := "0"
	if f.VisibleTo == nil {
		counted = "SELECT count(*) FROM (SELECT 1 FROM deployments d WHERE " + cond + lim(bound+1) + ") c"
		pick = "SELECT d.id FROM deployments d" + sortJoin + " WHERE " + cond + " ORDER BY " + order + lim(limit) + " OFFSET " + strconv.Itoa(offset)
	} else {
		// v: the user's grants, as sorted project and environment ids
		// with the highest level held on each. A deployment is visible
		// through its project's grant or, without one, its environment's:
		// the two branches are disjoint, so their rows add up without a
		// DISTINCT, and each grant's walk is bounded on its own.
		grants := func(col string) string {
			return "SELECT array_agg(id ORDER BY id) AS ids, array_agg(r ORDER BY id) AS ranks FROM (SELECT g." + col + " AS id, max(" + grantRankSQL +
				") AS r FROM access_grants g JOIN team_members m ON m.team_id = g.team_id WHERE m.user_id = " + user + " AND g." + col + " IS NOT NULL GROUP BY 1) x"
		}
		with = "WITH v AS MATERIALIZED (SELECT COALESCE(gp.ids, '{}') AS p, COALESCE(gp.ranks, '{}') AS pr, COALESCE(ge.ids, '{}') AS e, COALESCE(ge.ranks, '{}') AS er FROM (" +
			grants("project_id") + ") gp, (" + grants("environment_id") + ") ge) "
		visible := func(sel, join, tail string) string {
			return "SELECT x.* FROM v, unnest(v.p) vp(id), LATERAL (SELECT " + sel + " FROM deployments d" + join +
				" WHERE d.project_id = vp.id AND " + cond + tail + ") x" +
				" UNION ALL SELECT x.* FROM v, unnest(v.e) ve(id), LATERAL (SELECT " + sel + " FROM deployments d" + join +
				" WHERE d.environment_id = ve.id AND d.project_id <> ALL (v.p) AND " + cond + tail + ") x"
		}
		// Each grant's rows come sorted and cut at offset+limit; the page
		// is the best of those by the same order (sort key k, then id).
		sel, outer := "d.id", strings.ReplaceAll(order, "d.id", "id")
		if col := DeploymentSorts[f.Sort]; f.Sort != "" && f.Sort != "created" {
			sel = col + " AS k, d.id"
			outer = "k" + strings.ReplaceAll(strings.TrimPrefix(order, col), "d.id", "id")
		}
		counted = "SELECT count(*) FROM (" + visible("1", "", lim(bound+1)) + lim(bound+1) + ") c"
		pick = "SELECT id FROM (" + visible(sel, sortJoin, " ORDER BY "+order+lim(offset+limit)) + ") c ORDER BY " + outer + lim(limit) + " OFFSET " + strconv.Itoa(offset)
		rank = "GREATEST(COALESCE(v.pr[array_position(v.p, d.project_id)], 0), COALESCE(v.er[array_position(v.e, d.environment_id)], 0))"
	}
	q := with
	if q == "" {
		q = "WITH "
	} else {
		q += ", "
	}
	q += "pg AS (" + pick + ") SELECT " + deploymentColumns + ", (" + counted + "), " + rank + `,
		ARRAY(SELECT s.node_key FROM deployment_services s WHERE s.deployment_id = d.id AND s.ingress ORDER BY s.node_key),
		CASE WHEN d.status = 'running' THEN (SELECT json_agg(json_build_object('id', s.node_key, 'state', s.state, 'restart_count', s.restart_count,
			'exit_code', s.exit_code, 'last_exit_oom', s.last_exit_oom, 'last_exit_at', s.last_exit_at) ORDER BY s.node_key)
			FROM deployment_services s WHERE s.deployment_id = d.id AND (s.state IN ('restarting', 'exited', 'oom-killed') OR s.last_exit_at IS NOT NULL)) END
		FROM pg JOIN deployments d ON d.id = pg.id` + strings.TrimPrefix(deploymentFrom, " FROM deployments d")
	if f.VisibleTo != nil {
		q += " CROSS JOIN v"
	}
	q += " ORDER BY " + order
	// Page size, offset and bound are literals, so every page number is a
	// statement of its own, and PostgreSQL keeps 0.3–0.7 MB per cached
	// statement and connection (pg_backend_memory_contexts). Only the first
	// pages are cached; a deeper page is planned for its call and
	// forgotten (about 1 ms more). (As parameters, the offset and bound made
	// the cached plans three to five times slower.)
	if offset > 4*limit || offset+limit > DeploymentCountCap {
		args = append([]any{pgx.QueryExecModeExec}, args...)
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, 0, false, fmt.Errorf("list deployments: %w", err)
	}
	defer rows.Close()
	page = make([]DeploymentListItem, 0, limit)
	var grantRank int
	var keys []string
	var crashed []byte
	sc := newDeploymentScan(&total, &grantRank, &keys, &crashed)
	for rows.Next() {
		keys, crashed = nil, nil
		var it DeploymentListItem
		if it.Deployment, err = sc.scan(rows); err != nil {
			return nil, 0, false, fmt.Errorf("list deployments: %w", err)
		}
		it.GrantRank, it.IngressKeys = grantRank, keys
		if crashed != nil {
			if err := json.Unmarshal(crashed, &it.Crashed); err != nil {
				return nil, 0, false, fmt.Errorf("list deployments: crashed services of %d: %w", it.ID, err)
			}
		}
		page = append(page, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("list deployments: %w", err)
	}
	if len(page) == 0 && offset > 0 {
		// Past the end: the page's statement returned no row to carry
		// the total.
		if err := s.db.QueryRow(ctx, with+counted, args...).Scan(&total); err != nil {
			return nil, 0, false, fmt.Errorf("count deployments: %w", err)
		}
	}
	if total > bound {
		total, capped = bound, true
	}
	return page, total, capped, nil
}

// deploymentSortJoins are the joins a sort column of DeploymentSorts needs
// where only deployments is read.
var deploymentSortJoins = map[string]string{
	"project":     " JOIN projects p ON p.id = d.project_id",
	"environment": " JOIN environments e ON e.id = d.environment_id",
	"owner":       " LEFT JOIN users u ON u.id = d.owner_id",
}

// NodeDeployments lists the deployments on a node in the given statuses.
func (s *Store) NodeDeployments(ctx context.Context, nodeID int64, statuses ...string) ([]Deployment, error) {
	rows, err := s.db.Query(ctx, "SELECT "+deploymentColumns+deploymentFrom+" WHERE d.node_id = $1 AND d.status = ANY($2) ORDER BY d.id", nodeID, statuses)
	if err != nil {
		return nil, fmt.Errorf("node %d deployments: %w", nodeID, err)
	}
	defer rows.Close()
	var out []Deployment
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ExpiredDeployments returns the ids of live deployments whose expires_at has
// passed.
func (s *Store) ExpiredDeployments(ctx context.Context, now time.Time) ([]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT id FROM deployments
		WHERE status IN ('running', 'failed', 'offline', 'deploying') AND expires_at <= $1 ORDER BY expires_at`, now)
	if err != nil {
		return nil, fmt.Errorf("expired deployments: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("expired deployments: %w", err)
	}
	return ids, nil
}

// OverdueDeployment is a deployment deploying for longer than its
// project's deploy timeout.
type OverdueDeployment struct {
	ID      int64
	NodeID  *int64
	Since   time.Time
	Timeout time.Duration
}

// OverdueDeployments lists the deployments deploying since longer than
// their project's deploy_timeout_seconds at now.
func (s *Store) OverdueDeployments(ctx context.Context, now time.Time) ([]OverdueDeployment, error) {
	rows, err := s.db.Query(ctx, `SELECT d.id, d.node_id, d.status_since, p.deploy_timeout_seconds
		FROM deployments d JOIN projects p ON p.id = d.project_id
		WHERE d.status = 'deploying' AND d.status_since + make_interval(secs => p.deploy_timeout_seconds) <= $1
		ORDER BY d.status_since`, now)
	if err != nil {
		return nil, fmt.Errorf("overdue deployments: %w", err)
	}
	defer rows.Close()
	var out []OverdueDeployment
	for rows.Next() {
		var o OverdueDeployment
		var secs int64
		if err := rows.Scan(&o.ID, &o.NodeID, &o.Since, &secs); err != nil {
			return nil, fmt.Errorf("overdue deployments: %w", err)
		}
		o.Timeout = time.Duration(secs) * time.Second
		out = append(out, o)
	}
	return out, rows.Err()
}

// --- creation ---------------------------------------------------------------

// DeploymentTarget is what creating a deployment needs to know about its
// project and environment.
type DeploymentTarget struct {
	ProjectID         int64
	ProjectName       string
	ProjectCPU        float64
	ProjectMemoryMB   int64
	ProjectTTLSeconds *int64
	NodeSelector      []byte // JSON, validated by server/placement
	EnvironmentID     int64
	EnvironmentName   string
	BaseDomain        string
	HostTemplate      string
	DefaultTTLSeconds int64
	CPUOvercommit     float64
	PipelineVersionID int64 // latest; 0 when the project has no pipeline
	PipelineVersion   int
	PipelineGraph     []byte
}

// TTL is the project override or the environment default.
func (t DeploymentTarget) TTL() time.Duration {
	if t.ProjectTTLSeconds != nil && *t.ProjectTTLSeconds > 0 {
		return time.Duration(*t.ProjectTTLSeconds) * time.Second
	}
	return time.Duration(t.DefaultTTLSeconds) * time.Second
}

// GetDeploymentTarget loads a project, an environment and the project's
// latest pipeline version.
func (s *Store) GetDeploymentTarget(ctx context.Context, projectID, environmentID int64) (DeploymentTarget, error) {
	var t DeploymentTarget
	err := s.db.QueryRow(ctx, `SELECT p.id, p.name, p.cpu, p.memory_mb, p.ttl_seconds, p.node_selector::text,
			e.id, e.name, e.base_domain, e.host_template, e.default_ttl_seconds, e.cpu_overcommit,
			COALESCE(pv.id, 0), COALESCE(pv.version, 0)
		FROM projects p CROSS JOIN environments e
		LEFT JOIN LATERAL (SELECT id, version FROM pipeline_versions WHERE project_id = p.id ORDER BY version DESC LIMIT 1) pv ON TRUE
		WHERE p.id = $1 AND e.id = $2`, projectID, environmentID).Scan(
		&t.ProjectID, &t.ProjectName, &t.ProjectCPU, &t.ProjectMemoryMB, &t.ProjectTTLSeconds, &t.NodeSelector,
		&t.EnvironmentID, &t.EnvironmentName, &t.BaseDomain, &t.HostTemplate, &t.DefaultTTLSeconds, &t.CPUOvercommit,
		&t.PipelineVersionID, &t.PipelineVersion)
	if err != nil {
		return t, fmt.Errorf("load project %d and environment %d: %w", projectID, environmentID, notFound(err))
	}
	return t, nil
}

// PlacementNode is a candidate node with its figures, read under a row lock.
type PlacementNode struct {
	ID         int64
	Name       string
	Labels     map[string]string
	CapCPU     float64
	CapMemMB   int64
	UsedCPU    float64
	OtherCPU   float64 // smoothed CPU use outside NullOps' containers
	UsedMemMB  int64
	AllocCPU   float64
	AllocMemMB int64
}

// LockPlacementNodes locks every online, enabled, non-revoked node of the
// environment (in id order, so concurrent creators queue instead of
// deadlocking) and returns them with what their live deployments reserve.
// The caller inserts its deployment in the same transaction: concurrent
// creates in the environment are serialised and never oversubscribe a node.
func LockPlacementNodes(ctx context.Context, tx Querier, environmentID int64) ([]PlacementNode, error) {
	return placementNodes(ctx, tx, environmentID, " FOR UPDATE")
}

// PlacementNodes is LockPlacementNodes without the locks, for answers that
// reserve nothing (the placement dry run): the figures may change right
// after.
func PlacementNodes(ctx context.Context, q Querier, environmentID int64) ([]PlacementNode, error) {
	return placementNodes(ctx, q, environmentID, "")
}

func placementNodes(ctx context.Context, tx Querier, environmentID int64, lock string) ([]PlacementNode, error) {
	rows, err := tx.Query(ctx, `SELECT id, name, labels, capacity, usage FROM nodes
		WHERE environment_id = $1 AND status = 'online' AND enabled AND NOT revoked
		ORDER BY id`+lock, environmentID)
	if err != nil {
		return nil, fmt.Errorf("lock nodes of environment %d: %w", environmentID, err)
	}
	var nodes []PlacementNode
	for rows.Next() {
		var n PlacementNode
		var labels, capacity, usage []byte
		if err := rows.Scan(&n.ID, &n.Name, &labels, &capacity, &usage); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan node: %w", err)
		}
		var c struct {
			CPUs     float64 `json:"cpus"`
			MemoryMB int64   `json:"memory_mb"`
		}
		var u struct {
			CPUsUsed     float64 `json:"cpus_used"`
			OtherCPUs    float64 `json:"other_cpus"`
			MemoryUsedMB int64   `json:"memory_used_mb"`
		}
		// Malformed figures count as zero capacity: such a node never fits.
		_ = json.Unmarshal(capacity, &c)
		_ = json.Unmarshal(usage, &u)
		n.CapCPU, n.CapMemMB, n.UsedCPU, n.OtherCPU, n.UsedMemMB = c.CPUs, c.MemoryMB, u.CPUsUsed, u.OtherCPUs, u.MemoryUsedMB
		n.Labels = map[string]string{}
		_ = json.Unmarshal(labels, &n.Labels)
		nodes = append(nodes, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock nodes of environment %d: %w", environmentID, err)
	}
	if len(nodes) == 0 {
		return nodes, nil
	}
	ids := make([]int64, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	// A separate statement, run after the locks are held, sees every
	// reservation committed by the transactions we waited for.
	rows, err = tx.Query(ctx, `SELECT node_id, COALESCE(sum(cpu), 0), COALESCE(sum(memory_mb), 0)::bigint FROM deployments
		WHERE node_id = ANY($1) AND status = ANY($2) GROUP BY node_id`, ids, reservingStatuses)
	if err != nil {
		return nil, fmt.Errorf("sum reservations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var cpu float64
		var mem int64
		if err := rows.Scan(&id, &cpu, &mem); err != nil {
			return nil, fmt.Errorf("scan reservation: %w", err)
		}
		for i := range nodes {
			if nodes[i].ID == id {
				nodes[i].AllocCPU, nodes[i].AllocMemMB = cpu, mem
			}
		}
	}
	return nodes, rows.Err()
}

// NewDeployment is the row a create (or clone) inserts.
type NewDeployment struct {
	Name              string
	ProjectID         int64
	EnvironmentID     int64
	NodeID            int64
	PipelineVersionID int64
	Status            string
	OwnerID           *int64
	ClonedFrom        *int64
	Tags              map[string]string
	CPU               float64
	MemoryMB          int64
	TTL               time.Duration
}

// ErrDeploymentNameTaken is returned when a live deployment of the
// environment already has the name.
var ErrDeploymentNameTaken = fmt.Errorf("%w: a deployment with this name exists in the environment", ErrConflict)

// InsertDeployment inserts a deployment; expires_at = now + TTL.
func InsertDeployment(ctx context.Context, tx Querier, n NewDeployment) (int64, error) {
	tags, err := json.Marshal(nonNilTags(n.Tags))
	if err != nil {
		return 0, fmt.Errorf("encode tags: %w", err)
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO deployments (name, project_id, environment_id, node_id, pipeline_version_id, status,
			owner_id, cloned_from, tags, cpu, memory_mb, ttl_seconds, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now() + $12::bigint * interval '1 second')
		RETURNING id`,
		n.Name, n.ProjectID, n.EnvironmentID, n.NodeID, n.PipelineVersionID, n.Status,
		n.OwnerID, n.ClonedFrom, tags, n.CPU, n.MemoryMB, int64(n.TTL/time.Second)).Scan(&id)
	if IsUniqueViolation(err) {
		return 0, ErrDeploymentNameTaken
	}
	if err != nil {
		return 0, fmt.Errorf("insert deployment: %w", err)
	}
	return id, nil
}

func nonNilTags(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// DeploymentService is one service container of a deployment.
type DeploymentService struct {
	NodeKey       string    `json:"id"`
	ServiceID     *int64    `json:"service_id"`
	ServiceName   string    `json:"service"`
	Image         string    `json:"image"`
	Tag           string    `json:"tag"`
	ContainerPort int       `json:"container_port"`
	HostPort      int       `json:"host_port"`
	Ingress       bool      `json:"ingress"`
	Health        string    `json:"health"`
	CPUPercent    float64   `json:"cpu_percent"`
	MemoryBytes   int64     `json:"memory_bytes"`
	UpdatedAt     time.Time `json:"updated_at"`
	// State is what the agent last reported: running, restarting, exited,
	// oom-killed ("" until a report).
	State        string     `json:"state"`
	RestartCount int        `json:"restart_count"`
	ExitCode     *int       `json:"exit_code"`
	LastExitOOM  bool       `json:"last_exit_oom"`
	LastExitAt   *time.Time `json:"last_exit_at"`
	LastLines    string     `json:"last_lines"`
}

// DeploymentStep is one pipeline node's progress.
type DeploymentStep struct {
	NodeKey    string            `json:"id"`
	Kind       string            `json:"kind"`
	Status     string            `json:"status"`
	Attempt    int               `json:"attempt"`
	Message    string            `json:"message"`
	Outputs    map[string]string `json:"outputs,omitempty"` // secret values as ${secrets.NAME}
	StartedAt  *time.Time        `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at"`
}

// ReplaceDeploymentPlan (re)writes the services and pending steps of a
// deployment; a retry starts from a clean plan and drops the old step logs.
func ReplaceDeploymentPlan(ctx context.Context, tx Querier, id int64, services []DeploymentService, steps []DeploymentStep) error {
	for _, q := range []string{
		"DELETE FROM deployment_services WHERE deployment_id = $1",
		"DELETE FROM deployment_steps WHERE deployment_id = $1",
		"DELETE FROM step_logs WHERE deployment_id = $1",
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("clear plan of deployment %d: %w", id, err)
		}
	}
	for _, s := range services {
		if _, err := tx.Exec(ctx, `INSERT INTO deployment_services (deployment_id, node_key, service_id, image, tag, container_port, ingress)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, s.NodeKey, s.ServiceID, s.Image, s.Tag, s.ContainerPort, s.Ingress); err != nil {
			return fmt.Errorf("insert service %s of deployment %d: %w", s.NodeKey, id, err)
		}
	}
	for _, s := range steps {
		if _, err := tx.Exec(ctx, `INSERT INTO deployment_steps (deployment_id, node_key, kind) VALUES ($1, $2, $3)`,
			id, s.NodeKey, s.Kind); err != nil {
			return fmt.Errorf("insert step %s of deployment %d: %w", s.NodeKey, id, err)
		}
	}
	return nil
}

// ServiceIDsByName maps catalog service names to ids.
func (s *Store) ServiceIDsByName(ctx context.Context, names []string) (map[string]int64, error) {
	rows, err := s.db.Query(ctx, "SELECT name, id FROM services WHERE name = ANY($1)", names)
	if err != nil {
		return nil, fmt.Errorf("service ids: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var n string
		var id int64
		if err := rows.Scan(&n, &id); err != nil {
			return nil, err
		}
		out[n] = id
	}
	return out, rows.Err()
}

// DeploymentServices lists a deployment's services with their service names.
func (s *Store) DeploymentServices(ctx context.Context, id int64) ([]DeploymentService, error) {
	rows, err := s.db.Query(ctx, `SELECT ds.node_key, ds.service_id, COALESCE(sv.name, ''), ds.image, ds.tag, ds.container_port,
			ds.host_port, ds.ingress, ds.health, ds.cpu_percent, ds.memory_bytes, ds.updated_at,
			ds.state, ds.restart_count, ds.exit_code, ds.last_exit_oom, ds.last_exit_at, ds.last_lines
		FROM deployment_services ds LEFT JOIN services sv ON sv.id = ds.service_id
		WHERE ds.deployment_id = $1 ORDER BY ds.node_key`, id)
	if err != nil {
		return nil, fmt.Errorf("services of deployment %d: %w", id, err)
	}
	defer rows.Close()
	out := []DeploymentService{}
	for rows.Next() {
		var s DeploymentService
		if err := rows.Scan(&s.NodeKey, &s.ServiceID, &s.ServiceName, &s.Image, &s.Tag, &s.ContainerPort,
			&s.HostPort, &s.Ingress, &s.Health, &s.CPUPercent, &s.MemoryBytes, &s.UpdatedAt,
			&s.State, &s.RestartCount, &s.ExitCode, &s.LastExitOOM, &s.LastExitAt, &s.LastLines); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeploymentSteps lists a deployment's steps.
func (s *Store) DeploymentSteps(ctx context.Context, id int64) ([]DeploymentStep, error) {
	rows, err := s.db.Query(ctx, `SELECT node_key, kind, status, attempt, message, outputs, started_at, finished_at
		FROM deployment_steps WHERE deployment_id = $1 ORDER BY started_at NULLS LAST, node_key`, id)
	if err != nil {
		return nil, fmt.Errorf("steps of deployment %d: %w", id, err)
	}
	defer rows.Close()
	out := []DeploymentStep{}
	for rows.Next() {
		var s DeploymentStep
		var outputs []byte
		if err := rows.Scan(&s.NodeKey, &s.Kind, &s.Status, &s.Attempt, &s.Message, &outputs, &s.StartedAt, &s.FinishedAt); err != nil {
			return nil, err
		}
		_ = json.Unmarshal(outputs, &s.Outputs)
		out = append(out, s)
	}
	return out, rows.Err()
}

// --- state changes ----------------------------------------------------------

// SetDeploymentStatus moves a deployment to status `to` when its current
// status is one of from; it reports whether the row changed. Reason and
// failed step are replaced (cleared unless given).
func SetDeploymentStatus(ctx context.Context, tx Querier, id int64, from []string, to, reason, failedStep string) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE deployments SET status = $2, status_reason = $3, failed_step = $4, updated_at = now(),
			deleted_at = CASE WHEN $2 = 'deleted' THEN now() ELSE deleted_at END,
			delete_pending = CASE WHEN $2 = 'deleted' THEN FALSE ELSE delete_pending END
		WHERE id = $1 AND status = ANY($5)`, id, to, reason, failedStep, from)
	if err != nil {
		return false, fmt.Errorf("set deployment %d status %s: %w", id, to, err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkDeploymentDeleting records a delete request; pending means the node
// is offline and the delete is carried out when it reconnects.
func MarkDeploymentDeleting(ctx context.Context, tx Querier, id int64, pending bool, reason string) error {
	_, err := tx.Exec(ctx, `UPDATE deployments SET status = 'deleting', delete_pending = $2, status_reason = $3, updated_at = now()
		WHERE id = $1 AND status <> 'deleted'`, id, pending, reason)
	if err != nil {
		return fmt.Errorf("mark deployment %d deleting: %w", id, err)
	}
	return nil
}

// RetargetDeployment points a deployment (being retried) at a node and a
// pipeline version and sets it deploying.
func RetargetDeployment(ctx context.Context, tx Querier, id, nodeID, pipelineVersionID int64, cpu float64, memoryMB int64) error {
	_, err := tx.Exec(ctx, `UPDATE deployments SET node_id = $2, pipeline_version_id = $3, cpu = $4, memory_mb = $5,
			status = 'deploying', status_reason = '', failed_step = '', updated_at = now()
		WHERE id = $1`, id, nodeID, pipelineVersionID, cpu, memoryMB)
	if err != nil {
		return fmt.Errorf("retarget deployment %d: %w", id, err)
	}
	return nil
}

// ExtendDeployment resets the deployment's TTL clock: last_activity = now,
// expires_at = now + ttl.
func ExtendDeployment(ctx context.Context, tx Querier, id int64, ttl time.Duration) (time.Time, error) {
	var exp time.Time
	err := tx.QueryRow(ctx, `UPDATE deployments SET ttl_seconds = $2, last_activity_at = now(),
			expires_at = now() + $2::bigint * interval '1 second', updated_at = now()
		WHERE id = $1 RETURNING expires_at`, id, int64(ttl/time.Second)).Scan(&exp)
	if err != nil {
		return exp, fmt.Errorf("extend deployment %d: %w", id, notFound(err))
	}
	return exp, nil
}

// StepUpdate is a step status reported by an agent.
type StepUpdate struct {
	Step    string
	Kind    string
	Status  string
	Attempt int
	Message string
	Outputs map[string]string
	At      time.Time
}

// ApplyStepStatus records a step's status: running sets started_at,
// a final status sets finished_at. Unknown steps are inserted.
func ApplyStepStatus(ctx context.Context, tx Querier, deploymentID int64, u StepUpdate) error {
	outputs, err := json.Marshal(nonNilTags(u.Outputs))
	if err != nil {
		return fmt.Errorf("encode outputs: %w", err)
	}
	kind := u.Kind
	if kind != "service" && kind != "component" {
		kind = "component"
	}
	_, err = tx.Exec(ctx, `INSERT INTO deployment_steps AS s (deployment_id, node_key, kind, status, attempt, message, outputs, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7,
			CASE WHEN $4 <> 'pending' THEN $8::timestamptz END,
			CASE WHEN $4 IN ('succeeded', 'failed', 'skipped') THEN $8::timestamptz END)
		ON CONFLICT (deployment_id, node_key) DO UPDATE SET
			status = EXCLUDED.status, attempt = EXCLUDED.attempt, message = EXCLUDED.message,
			outputs = CASE WHEN EXCLUDED.outputs = '{}'::jsonb THEN s.outputs ELSE EXCLUDED.outputs END,
			started_at = CASE WHEN EXCLUDED.status = 'pending' THEN NULL
				WHEN EXCLUDED.status = 'running' THEN $8::timestamptz
				ELSE COALESCE(s.started_at, $8::timestamptz) END,
			finished_at = CASE WHEN EXCLUDED.status IN ('succeeded', 'failed', 'skipped') THEN $8::timestamptz END`,
		deploymentID, u.Step, kind, u.Status, u.Attempt, u.Message, outputs, u.At)
	if IsForeignKeyViolation(err) {
		return fmt.Errorf("step %s: deployment %d: %w", u.Step, deploymentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("apply step %s of deployment %d: %w", u.Step, deploymentID, err)
	}
	return nil
}

// AppendStepLog stores one chunk of a step's log.
func AppendStepLog(ctx context.Context, tx Querier, deploymentID int64, step string, attempt int, chunk string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	_, err := tx.Exec(ctx, `INSERT INTO step_logs (deployment_id, node_key, attempt, chunk, created_at) VALUES ($1, $2, $3, $4, $5)`,
		deploymentID, step, max(attempt, 1), chunk, at)
	if IsForeignKeyViolation(err) {
		return fmt.Errorf("log of step %s: deployment %d: %w", step, deploymentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("append log of step %s of deployment %d: %w", step, deploymentID, err)
	}
	return nil
}

// StepLogLine is one stored chunk.
type StepLogLine struct {
	ID      int64     `json:"id"`
	Attempt int       `json:"attempt"`
	Chunk   string    `json:"chunk"`
	At      time.Time `json:"at"`
}

// StepLogs returns the chunks of a step after afterID, oldest first.
func (s *Store) StepLogs(ctx context.Context, deploymentID int64, step string, afterID int64, limit int) ([]StepLogLine, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.Query(ctx, `SELECT id, attempt, chunk, created_at FROM step_logs
		WHERE deployment_id = $1 AND node_key = $2 AND id > $3 ORDER BY id LIMIT $4`, deploymentID, step, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("logs of step %s: %w", step, err)
	}
	defer rows.Close()
	out := []StepLogLine{}
	for rows.Next() {
		var l StepLogLine
		if err := rows.Scan(&l.ID, &l.Attempt, &l.Chunk, &l.At); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ServiceUpdate is a service container state reported by an agent. State
// "" (older agents) leaves the crash details as they are.
type ServiceUpdate struct {
	Service       string
	ContainerPort int
	HostPort      int
	// RouteHost is where the ingress reaches HostPort ("" = the node's
	// host; protocol.ServiceState.RouteHost).
	RouteHost string
	Running   bool
	Health    string

	State        string
	RestartCount int
	ExitCode     *int
	LastExitOOM  bool
	LastExitAt   *time.Time
	LastLines    string
}

// ApplyServiceState records a service's published port, health and state.
// It reports whether the service row exists.
func ApplyServiceState(ctx context.Context, tx Querier, deploymentID int64, u ServiceUpdate) (bool, error) {
	health := u.Health
	switch {
	case !u.Running && u.State == "":
		health = "stopped"
	case !u.Running:
		health = "unhealthy"
	case health == "":
		health = "unknown"
	}
	tag, err := tx.Exec(ctx, `UPDATE deployment_services SET host_port = $3, route_host = $12,
			container_port = CASE WHEN $4 > 0 THEN $4 ELSE container_port END,
			health = $5, updated_at = now(),
			state = CASE WHEN $6 <> '' THEN $6 ELSE state END,
			restart_count = CASE WHEN $6 <> '' THEN $7 ELSE restart_count END,
			exit_code = CASE WHEN $6 <> '' AND $8::int IS NOT NULL THEN $8::int ELSE exit_code END,
			last_exit_oom = CASE WHEN $6 <> '' AND $8::int IS NOT NULL THEN $9 ELSE last_exit_oom END,
			last_exit_at = CASE WHEN $6 <> '' AND $8::int IS NOT NULL THEN $10 ELSE last_exit_at END,
			last_lines = CASE WHEN $6 <> '' AND $11 <> '' THEN $11 ELSE last_lines END
		WHERE deployment_id = $1 AND node_key = $2`, deploymentID, u.Service, u.HostPort, u.ContainerPort, health,
		u.State, u.RestartCount, u.ExitCode, u.LastExitOOM, u.LastExitAt, u.LastLines, u.RouteHost)
	if err != nil {
		return false, fmt.Errorf("apply state of service %s of deployment %d: %w", u.Service, deploymentID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ServiceMetrics are one container's figures from an agent's metrics.
type ServiceMetrics struct {
	DeploymentID int64
	Service      string
	CPUPercent   float64
	MemoryBytes  int64
	Health       string
}

// UpdateServiceMetrics stores container figures of deployments on a node.
func (s *Store) UpdateServiceMetrics(ctx context.Context, nodeID int64, ms []ServiceMetrics) error {
	if len(ms) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, m := range ms {
		b.Queue(`UPDATE deployment_services ds SET cpu_percent = $4, memory_bytes = $5,
				health = CASE WHEN $6 <> '' THEN $6 ELSE ds.health END, updated_at = now()
			FROM deployments d WHERE d.id = ds.deployment_id AND d.node_id = $1 AND ds.deployment_id = $2 AND ds.node_key = $3`,
			nodeID, m.DeploymentID, m.Service, m.CPUPercent, m.MemoryBytes, m.Health)
	}
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("update service metrics of node %d: %w", nodeID, err)
	}
	return nil
}

// SetUnreachableDeploymentsOffline marks offline the running and deploying
// deployments of every node whose agent has not answered for longer than
// grace at now, and returns their ids. The reason says since when.
func SetUnreachableDeploymentsOffline(ctx context.Context, tx Querier, now time.Time, grace time.Duration) ([]int64, error) {
	rows, err := tx.Query(ctx, `UPDATE deployments d SET status = 'offline', updated_at = now(),
			status_reason = 'node offline since ' || to_char(n.unreachable_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
				|| CASE WHEN n.status_reason <> '' THEN ': ' || n.status_reason ELSE '' END
		FROM nodes n
		WHERE n.id = d.node_id AND n.status <> 'online' AND n.unreachable_since IS NOT NULL
		  AND n.unreachable_since <= $2::timestamptz - $1::bigint * interval '1 microsecond'
		  AND d.status IN ('running', 'deploying') RETURNING d.id`, grace.Microseconds(), now)
	if err != nil {
		return nil, fmt.Errorf("mark deployments of unreachable nodes offline: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("mark deployments of unreachable nodes offline: %w", err)
	}
	return ids, nil
}

// NextUnreachableDeadline returns when the grace of the earliest
// unreachable node with running or deploying deployments ends (ok false
// when there is none).
func (s *Store) NextUnreachableDeadline(ctx context.Context, grace time.Duration) (time.Time, bool, error) {
	var at *time.Time
	err := s.db.QueryRow(ctx, `SELECT min(n.unreachable_since) FROM nodes n
		WHERE n.status <> 'online' AND n.unreachable_since IS NOT NULL
		  AND EXISTS (SELECT 1 FROM deployments d WHERE d.node_id = n.id AND d.status IN ('running', 'deploying'))`).Scan(&at)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next unreachable deadline: %w", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return at.Add(grace), true, nil
}

// DeletingDeployment is a delete waiting to be carried out on a node.
type DeletingDeployment struct {
	ID      int64
	NodeID  int64
	Pending bool // the last attempt did not reach the node
	Routed  bool // it has ingress-exposed services
}

// DeletingDeployments lists the deployments being deleted on a node: the
// desired state the delivery loop carries out.
func (s *Store) DeletingDeployments(ctx context.Context) ([]DeletingDeployment, error) {
	rows, err := s.db.Query(ctx, `SELECT d.id, d.node_id, d.delete_pending,
			EXISTS (SELECT 1 FROM deployment_services ds WHERE ds.deployment_id = d.id AND ds.ingress)
		FROM deployments d WHERE d.status = 'deleting' AND d.node_id IS NOT NULL ORDER BY d.id`)
	if err != nil {
		return nil, fmt.Errorf("list deleting deployments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeletingDeployment, error) {
		var x DeletingDeployment
		err := r.Scan(&x.ID, &x.NodeID, &x.Pending, &x.Routed)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("list deleting deployments: %w", err)
	}
	return out, nil
}

// DeployingDeployment is a deployment that its node should be deploying.
type DeployingDeployment struct {
	ID     int64
	NodeID int64
	// Since is when it last entered its status: a retry (failed →
	// deploying) has a new one, so it is a new deploy to deliver.
	Since time.Time
}

// DeployingDeployments lists the pending and deploying deployments placed
// on a node: the deploys the delivery loop hands to agents.
func (s *Store) DeployingDeployments(ctx context.Context) ([]DeployingDeployment, error) {
	rows, err := s.db.Query(ctx, `SELECT id, node_id, status_since FROM deployments
		WHERE status IN ('pending', 'deploying') AND node_id IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list deploying deployments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeployingDeployment, error) {
		var x DeployingDeployment
		err := r.Scan(&x.ID, &x.NodeID, &x.Since)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("list deploying deployments: %w", err)
	}
	return out, nil
}

// RestoreNodeDeployments brings the offline deployments of a node that is
// back: those whose every step succeeded are running again, the others are
// still deploying (the agent resumes or reports them). It returns the ids.
func RestoreNodeDeployments(ctx context.Context, tx Querier, nodeID int64) ([]int64, error) {
	rows, err := tx.Query(ctx, `UPDATE deployments d SET status_reason = '', updated_at = now(),
			status = CASE WHEN EXISTS (SELECT 1 FROM deployment_steps s WHERE s.deployment_id = d.id AND s.status <> 'succeeded')
				THEN 'deploying' ELSE 'running' END
		WHERE node_id = $1 AND status = 'offline' RETURNING id`, nodeID)
	if err != nil {
		return nil, fmt.Errorf("restore deployments of node %d: %w", nodeID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("restore deployments of node %d: %w", nodeID, err)
	}
	return ids, nil
}

// DeletePendingOnNode returns the deployments of a node whose delete waits
// for the node.
func DeletePendingOnNode(ctx context.Context, tx Querier, nodeID int64) ([]int64, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM deployments WHERE node_id = $1 AND status = 'deleting' ORDER BY id`, nodeID)
	if err != nil {
		return nil, fmt.Errorf("pending deletes of node %d: %w", nodeID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("pending deletes of node %d: %w", nodeID, err)
	}
	return ids, nil
}

// --- history ----------------------------------------------------------------

// HistoryEntry is one line of a deployment's history.
type HistoryEntry struct {
	ID        int64           `json:"id"`
	ActorID   *int64          `json:"actor_id"`
	ActorName string          `json:"actor"`
	Action    string          `json:"action"`
	Detail    json.RawMessage `json:"detail"`
	At        time.Time       `json:"at"`
}

// AddDeploymentHistory appends to a deployment's history.
func AddDeploymentHistory(ctx context.Context, tx Querier, deploymentID int64, actorID *int64, actorName, action string, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("encode history detail: %w", err)
	}
	if detail == nil {
		b = []byte("{}")
	}
	if _, err := tx.Exec(ctx, `INSERT INTO deployment_history (deployment_id, actor_id, actor_name, action, detail) VALUES ($1, $2, $3, $4, $5)`,
		deploymentID, actorID, actorName, action, b); err != nil {
		return fmt.Errorf("add history of deployment %d: %w", deploymentID, err)
	}
	return nil
}

// DeploymentHistory lists a deployment's history, oldest first.
func (s *Store) DeploymentHistory(ctx context.Context, deploymentID int64) ([]HistoryEntry, error) {
	rows, err := s.db.Query(ctx, `SELECT id, actor_id, actor_name, action, detail, created_at FROM deployment_history
		WHERE deployment_id = $1 ORDER BY id`, deploymentID)
	if err != nil {
		return nil, fmt.Errorf("history of deployment %d: %w", deploymentID, err)
	}
	defer rows.Close()
	out := []HistoryEntry{}
	for rows.Next() {
		var h HistoryEntry
		if err := rows.Scan(&h.ID, &h.ActorID, &h.ActorName, &h.Action, &h.Detail, &h.At); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// --- live events ------------------------------------------------------------

// DeploymentEventsChannel is the PostgreSQL NOTIFY channel of deployment
// changes. NOTIFY is delivered when (and only if) the transaction commits.
const DeploymentEventsChannel = "nullops_deployment_events"

// NotifyDeploymentEvent queues payload (at most ~7900 bytes) for delivery
// to every listener when the transaction commits.
func NotifyDeploymentEvent(ctx context.Context, tx Querier, payload []byte) error {
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", DeploymentEventsChannel, string(payload)); err != nil {
		return fmt.Errorf("notify deployment event: %w", err)
	}
	return nil
}

// SetDeploymentDefinition records the resolved definition a deployment was
// created (or retried) with: JSON without secret values.
func SetDeploymentDefinition(ctx context.Context, tx Querier, id int64, def []byte) error {
	if _, err := tx.Exec(ctx, `UPDATE deployments SET definition = $2 WHERE id = $1`, id, def); err != nil {
		return fmt.Errorf("record definition of deployment %d: %w", id, err)
	}
	return nil
}

// BackfillDeploymentDefinition records the definition of a deployment
// created before definitions were recorded (it keeps one already set).
func BackfillDeploymentDefinition(ctx context.Context, q Querier, id int64, def []byte) error {
	if _, err := q.Exec(ctx, `UPDATE deployments SET definition = $2 WHERE id = $1 AND definition IS NULL`, id, def); err != nil {
		return fmt.Errorf("record definition of deployment %d: %w", id, err)
	}
	return nil
}

// DeploymentDefinition returns a deployment's recorded definition; nil for
// deployments created before definitions were recorded.
func DeploymentDefinition(ctx context.Context, q Querier, id int64) ([]byte, error) {
	var def []byte
	if err := q.QueryRow(ctx, `SELECT definition FROM deployments WHERE id = $1`, id).Scan(&def); err != nil {
		return nil, fmt.Errorf("definition of deployment %d: %w", id, notFound(err))
	}
	return def, nil
}
