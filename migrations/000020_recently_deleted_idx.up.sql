-- The ingress's list of recently deleted hosts reads deleted deployments by
-- deletion time.
CREATE INDEX deployments_recently_deleted_idx ON deployments(deleted_at) WHERE status = 'deleted';
