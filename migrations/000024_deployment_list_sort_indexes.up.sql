-- The deployments list's "mine" filter (a user's live deployments, newest
-- first) and its sort by name (both directions, ties by id the same way).
CREATE INDEX deployments_owner_live_idx ON deployments(owner_id, id) WHERE status <> 'deleted';
CREATE INDEX deployments_live_name_idx ON deployments(name, id) WHERE status <> 'deleted';
