DROP INDEX IF EXISTS deployments_recently_deleted_idx;
