-- Route-table change notifications name what changed, so the ingress
-- publisher (server/ingresspub) recomputes only the routes of those
-- deployments instead of the whole table. Payloads (one id each):
--   d:<deployment id>   the deployment, or one of its services, changed
--   n:<node id>         a node's status or host changed, or it was deleted
--   e:<environment id>  an environment's naming changed
-- The INSERT/DELETE triggers of 000006 fired once per statement with an
-- empty payload; they fire per row now. PostgreSQL still folds identical
-- notifications of one transaction into one (every service of a deployment
-- gives the same d:<id>). An empty or unknown payload still means "anything
-- may have changed": the publisher recomputes everything then.

DROP TRIGGER deployments_routes_ins_del ON deployments;
DROP TRIGGER deployments_routes_upd ON deployments;
DROP TRIGGER deployment_services_routes_ins_del ON deployment_services;
DROP TRIGGER deployment_services_routes_upd ON deployment_services;
DROP TRIGGER nodes_routes_del ON nodes;
DROP TRIGGER nodes_routes_upd ON nodes;
DROP TRIGGER environments_routes_upd ON environments;
DROP FUNCTION nullops_notify_routes();

CREATE FUNCTION nullops_notify_routes_deployment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('nullops_routes', 'd:' || OLD.id);
    ELSE
        PERFORM pg_notify('nullops_routes', 'd:' || NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION nullops_notify_routes_service() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM pg_notify('nullops_routes', 'd:' || OLD.deployment_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('nullops_routes', 'd:' || NEW.deployment_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION nullops_notify_routes_node() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nullops_routes', 'n:' || OLD.id);
    RETURN NULL;
END;
$$;

CREATE FUNCTION nullops_notify_routes_environment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nullops_routes', 'e:' || OLD.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER deployments_routes_ins_del AFTER INSERT OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION nullops_notify_routes_deployment();
CREATE TRIGGER deployments_routes_upd AFTER UPDATE OF status, node_id, name, environment_id ON deployments
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                    OR OLD.node_id IS DISTINCT FROM NEW.node_id
                    OR OLD.name IS DISTINCT FROM NEW.name
                    OR OLD.environment_id IS DISTINCT FROM NEW.environment_id)
    EXECUTE FUNCTION nullops_notify_routes_deployment();

CREATE TRIGGER deployment_services_routes_ins_del AFTER INSERT OR DELETE ON deployment_services
    FOR EACH ROW EXECUTE FUNCTION nullops_notify_routes_service();
CREATE TRIGGER deployment_services_routes_upd AFTER UPDATE OF host_port, ingress, node_key, deployment_id ON deployment_services
    FOR EACH ROW WHEN (OLD.host_port IS DISTINCT FROM NEW.host_port
                    OR OLD.ingress IS DISTINCT FROM NEW.ingress
                    OR OLD.node_key IS DISTINCT FROM NEW.node_key
                    OR OLD.deployment_id IS DISTINCT FROM NEW.deployment_id)
    EXECUTE FUNCTION nullops_notify_routes_service();

CREATE TRIGGER nodes_routes_del AFTER DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION nullops_notify_routes_node();
CREATE TRIGGER nodes_routes_upd AFTER UPDATE OF status, host ON nodes
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.host IS DISTINCT FROM NEW.host)
    EXECUTE FUNCTION nullops_notify_routes_node();

CREATE TRIGGER environments_routes_upd AFTER UPDATE OF name, base_domain, host_template ON environments
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
                    OR OLD.base_domain IS DISTINCT FROM NEW.base_domain
                    OR OLD.host_template IS DISTINCT FROM NEW.host_template)
    EXECUTE FUNCTION nullops_notify_routes_environment();
