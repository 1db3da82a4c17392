-- Pipeline versions are immutable once saved (docs/architecture.md, "Pipeline graph"): only
-- created_by may change (ON DELETE SET NULL when the author is deleted).
CREATE FUNCTION pipeline_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.project_id IS DISTINCT FROM OLD.project_id
       OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.graph IS DISTINCT FROM OLD.graph
       OR NEW.plugin_pins IS DISTINCT FROM OLD.plugin_pins
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'pipeline version % of project % is immutable', OLD.version, OLD.project_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER pipeline_versions_immutable
    BEFORE UPDATE ON pipeline_versions
    FOR EACH ROW EXECUTE FUNCTION pipeline_versions_immutable();
