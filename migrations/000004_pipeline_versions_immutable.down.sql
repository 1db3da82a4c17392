DROP TRIGGER IF EXISTS pipeline_versions_immutable ON pipeline_versions;
DROP FUNCTION IF EXISTS pipeline_versions_immutable();
