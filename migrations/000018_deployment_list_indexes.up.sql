-- Lists of live deployments filtered by project or environment (a user's
-- visible deployments, a project's page) walk these newest first.
CREATE INDEX deployments_project_live_idx ON deployments(project_id, id) WHERE status <> 'deleted';
CREATE INDEX deployments_environment_live_idx ON deployments(environment_id, id) WHERE status <> 'deleted';
CREATE INDEX deployments_live_idx ON deployments(id) WHERE status <> 'deleted';
