ALTER TABLE projects DROP COLUMN IF EXISTS deploy_timeout_seconds;
DROP INDEX IF EXISTS deployments_deploying_idx;
DROP TRIGGER IF EXISTS deployments_status_since ON deployments;
DROP FUNCTION IF EXISTS nullops_status_since();
ALTER TABLE deployments DROP COLUMN IF EXISTS status_since;
ALTER TABLE deployment_services
    DROP COLUMN IF EXISTS state,
    DROP COLUMN IF EXISTS restart_count,
    DROP COLUMN IF EXISTS exit_code,
    DROP COLUMN IF EXISTS last_exit_oom,
    DROP COLUMN IF EXISTS last_exit_at,
    DROP COLUMN IF EXISTS last_lines;
