DROP INDEX IF EXISTS deployments_live_idx;
DROP INDEX IF EXISTS deployments_environment_live_idx;
DROP INDEX IF EXISTS deployments_project_live_idx;
