-- The CPU and memory history of every deployment's service containers
-- (docs/architecture.md, "Usage history"): a ring of slots per service,
-- one sample per step (15 s), slot = sample time / step modulo the number
-- of slots (24 h / 15 s = 5760). A new sample overwrites the slot it falls
-- into, so a service never holds more rows than there are slots, whatever
-- the agents send; readers ignore slots older than the window. Samples of
-- failed deployments age out (pruned by time); a deployment that turns
-- deleted loses them at once (trigger), a removed row by the cascade.

CREATE TABLE service_usage (
    deployment_id BIGINT NOT NULL,
    node_key      TEXT NOT NULL,
    slot          INTEGER NOT NULL CHECK (slot >= 0),
    at            TIMESTAMPTZ NOT NULL,
    cpu_percent   DOUBLE PRECISION NOT NULL,
    memory_bytes  BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, node_key, slot),
    FOREIGN KEY (deployment_id, node_key) REFERENCES deployment_services(deployment_id, node_key) ON DELETE CASCADE
);

CREATE INDEX service_usage_at_idx ON service_usage(at);

CREATE FUNCTION nullops_drop_usage_of_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM service_usage WHERE deployment_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER deployments_drop_usage AFTER UPDATE OF status ON deployments
    FOR EACH ROW WHEN (NEW.status = 'deleted' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION nullops_drop_usage_of_deleted();
