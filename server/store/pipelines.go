package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PipelineVersion is one immutable saved pipeline graph of a project.
type PipelineVersion struct {
	ID            int64             `json:"id"`
	ProjectID     int64             `json:"project_id"`
	Version       int               `json:"version"`
	Graph         json.RawMessage   `json:"graph,omitempty"`
	PluginPins    map[string]string `json:"plugin_pins"` // plugin name -> full image reference
	CreatedByID   *int64            `json:"created_by_id"`
	CreatedByName string            `json:"created_by"`
	CreatedAt     time.Time         `json:"created_at"`
}

const pipelineColumns = `pv.id, pv.project_id, pv.version, pv.plugin_pins, pv.created_by, COALESCE(u.username, ''), pv.created_at`

const pipelineFrom = ` FROM pipeline_versions pv LEFT JOIN users u ON u.id = pv.created_by`

func scanPipeline(row pgx.Row, withGraph bool) (PipelineVersion, error) {
	var v PipelineVersion
	dest := []any{&v.ID, &v.ProjectID, &v.Version, &v.PluginPins, &v.CreatedByID, &v.CreatedByName, &v.CreatedAt}
	var graph string
	if withGraph {
		dest = append(dest, &graph)
	}
	if err := row.Scan(dest...); err != nil {
		return PipelineVersion{}, notFound(err)
	}
	if withGraph {
		v.Graph = json.RawMessage(graph)
	}
	if v.PluginPins == nil {
		v.PluginPins = map[string]string{}
	}
	return v, nil
}

// LatestPipeline returns a project's newest pipeline version with its graph
// (ErrNotFound when none was saved yet).
func LatestPipeline(ctx context.Context, q Querier, projectID int64) (PipelineVersion, error) {
	v, err := scanPipeline(q.QueryRow(ctx, `SELECT `+pipelineColumns+`, pv.graph::text`+pipelineFrom+`
		WHERE pv.project_id = $1 ORDER BY pv.version DESC LIMIT 1`, projectID), true)
	if err != nil {
		return PipelineVersion{}, fmt.Errorf("latest pipeline of project %d: %w", projectID, err)
	}
	return v, nil
}

// GetPipelineVersion returns version number version of a project, with its
// graph.
func GetPipelineVersion(ctx context.Context, q Querier, projectID int64, version int) (PipelineVersion, error) {
	v, err := scanPipeline(q.QueryRow(ctx, `SELECT `+pipelineColumns+`, pv.graph::text`+pipelineFrom+`
		WHERE pv.project_id = $1 AND pv.version = $2`, projectID, version), true)
	if err != nil {
		return PipelineVersion{}, fmt.Errorf("pipeline version %d of project %d: %w", version, projectID, err)
	}
	return v, nil
}

// GetPipelineVersionByID returns a pipeline version by row id, with its
// graph.
func GetPipelineVersionByID(ctx context.Context, q Querier, id int64) (PipelineVersion, error) {
	v, err := scanPipeline(q.QueryRow(ctx, `SELECT `+pipelineColumns+`, pv.graph::text`+pipelineFrom+` WHERE pv.id = $1`, id), true)
	if err != nil {
		return PipelineVersion{}, fmt.Errorf("pipeline version id %d: %w", id, err)
	}
	return v, nil
}

// ListPipelineVersions pages through a project's versions, newest first,
// without graphs; it also returns the total count.
func (s *Store) ListPipelineVersions(ctx context.Context, projectID int64, limit, offset int) ([]PipelineVersion, int, error) {
	var total int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM pipeline_versions WHERE project_id = $1`, projectID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count pipeline versions of project %d: %w", projectID, err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+pipelineColumns+pipelineFrom+` WHERE pv.project_id = $1
		ORDER BY pv.version DESC LIMIT $2 OFFSET $3`, projectID, pageLimit(limit), max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("list pipeline versions of project %d: %w", projectID, err)
	}
	out, err := collectRows(rows, func(r pgx.Rows) (PipelineVersion, error) { return scanPipeline(r, false) })
	if err != nil {
		return nil, 0, fmt.Errorf("list pipeline versions of project %d: %w", projectID, err)
	}
	return out, total, nil
}

// InsertPipelineVersion stores the next version of a project's pipeline.
// Call it in a transaction after LockProject so concurrent saves get
// consecutive numbers.
func InsertPipelineVersion(ctx context.Context, tx Querier, projectID int64, graph json.RawMessage, pins map[string]string, createdBy *int64) (PipelineVersion, error) {
	if pins == nil {
		pins = map[string]string{}
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO pipeline_versions (project_id, version, graph, plugin_pins, created_by)
		VALUES ($1, (SELECT COALESCE(max(version), 0) + 1 FROM pipeline_versions WHERE project_id = $1), $2::jsonb, $3, $4)
		RETURNING id`, projectID, string(graph), pins, createdBy).Scan(&id)
	if err != nil {
		return PipelineVersion{}, fmt.Errorf("insert pipeline version of project %d: %w", projectID, err)
	}
	return GetPipelineVersionByID(ctx, tx, id)
}

// LatestPipelineReferrers names the projects whose latest pipeline version
// has a node of kind ("service" or "plugin" for component nodes) naming
// name.
func LatestPipelineReferrers(ctx context.Context, q Querier, kind, name string) ([]string, error) {
	nodeKind, field := "service", "service"
	if kind == "plugin" {
		nodeKind, field = "component", "plugin"
	}
	refs, err := referrers(ctx, q, `SELECT 'project "' || p.name || '" (pipeline version ' || pv.version || ')'
		FROM projects p JOIN LATERAL (SELECT version, graph FROM pipeline_versions WHERE project_id = p.id ORDER BY version DESC LIMIT 1) pv ON TRUE
		WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(pv.graph->'nodes') = 'array' THEN pv.graph->'nodes' ELSE '[]'::jsonb END) n
			WHERE n->>'kind' = $1 AND n->>$2 = $3)
		ORDER BY p.name`, nodeKind, field, name)
	if err != nil {
		return nil, fmt.Errorf("pipelines using %s %q: %w", kind, name, err)
	}
	return refs, nil
}

// liveStatuses are those of deployments that still need their definition:
// syncs and redeliveries send it to their node.
const liveStatuses = `('pending', 'deploying', 'running', 'offline')`

// LiveDeploymentReferrers names the live deployments whose pipeline version
// uses the service or plugin (kind "service" or "plugin"), e.g.
// `deployment "pr-1" in qa (running, pipeline version 3)`.
func LiveDeploymentReferrers(ctx context.Context, q Querier, kind, name string) ([]string, error) {
	nodeKind, field := "service", "service"
	if kind == "plugin" {
		nodeKind, field = "component", "plugin"
	}
	refs, err := referrers(ctx, q, `SELECT 'deployment "' || d.name || '" in ' || e.name || ' (' || d.status || ', pipeline version ' || pv.version || ')'
		FROM deployments d JOIN pipeline_versions pv ON pv.id = d.pipeline_version_id JOIN environments e ON e.id = d.environment_id
		WHERE d.status IN `+liveStatuses+`
		  AND EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(pv.graph->'nodes') = 'array' THEN pv.graph->'nodes' ELSE '[]'::jsonb END) n
			WHERE n->>'kind' = $1 AND n->>$2 = $3)
		ORDER BY e.name, d.name`, nodeKind, field, name)
	if err != nil {
		return nil, fmt.Errorf("deployments using %s %q: %w", kind, name, err)
	}
	return refs, nil
}
