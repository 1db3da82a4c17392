DROP INDEX IF EXISTS deployments_live_name_idx;
DROP INDEX IF EXISTS deployments_owner_live_idx;
