DROP TRIGGER IF EXISTS deployments_drop_usage ON deployments;
DROP FUNCTION IF EXISTS nullops_drop_usage_of_deleted();
DROP TABLE IF EXISTS service_usage;
