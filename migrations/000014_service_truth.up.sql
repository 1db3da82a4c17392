-- Deployments that tell the truth: what the agent reports about each
-- service container after its step (state, Docker's restart count, last
-- exit and the last log lines, secret values masked by the agent), when a
-- deployment entered its current status, and how long a project's
-- deployments may stay deploying before they are failed and rolled back.

ALTER TABLE deployment_services
    ADD COLUMN state         TEXT NOT NULL DEFAULT ''
        CHECK (state IN ('', 'running', 'restarting', 'exited', 'oom-killed')),
    ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN exit_code     INTEGER,
    ADD COLUMN last_exit_oom BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN last_exit_at  TIMESTAMPTZ,
    ADD COLUMN last_lines    TEXT NOT NULL DEFAULT '';

ALTER TABLE deployments ADD COLUMN status_since TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE FUNCTION nullops_status_since() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.status_since := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER deployments_status_since BEFORE UPDATE OF status ON deployments
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION nullops_status_since();

CREATE INDEX deployments_deploying_idx ON deployments(status_since) WHERE status = 'deploying';

ALTER TABLE projects ADD COLUMN deploy_timeout_seconds INTEGER NOT NULL DEFAULT 1800
    CHECK (deploy_timeout_seconds BETWEEN 60 AND 86400);
