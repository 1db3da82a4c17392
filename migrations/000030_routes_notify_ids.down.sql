-- Back to the triggers of 000006: one empty NOTIFY nullops_routes per change.

DROP TRIGGER IF EXISTS environments_routes_upd ON environments;
DROP TRIGGER IF EXISTS nodes_routes_upd ON nodes;
DROP TRIGGER IF EXISTS nodes_routes_del ON nodes;
DROP TRIGGER IF EXISTS deployment_services_routes_upd ON deployment_services;
DROP TRIGGER IF EXISTS deployment_services_routes_ins_del ON deployment_services;
DROP TRIGGER IF EXISTS deployments_routes_upd ON deployments;
DROP TRIGGER IF EXISTS deployments_routes_ins_del ON deployments;
DROP FUNCTION IF EXISTS nullops_notify_routes_environment();
DROP FUNCTION IF EXISTS nullops_notify_routes_node();
DROP FUNCTION IF EXISTS nullops_notify_routes_service();
DROP FUNCTION IF EXISTS nullops_notify_routes_deployment();

CREATE FUNCTION nullops_notify_routes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('nullops_routes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER deployments_routes_ins_del AFTER INSERT OR DELETE ON deployments
    FOR EACH STATEMENT EXECUTE FUNCTION nullops_notify_routes();
CREATE TRIGGER deployments_routes_upd AFTER UPDATE OF status, node_id, name, environment_id ON deployments
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                    OR OLD.node_id IS DISTINCT FROM NEW.node_id
                    OR OLD.name IS DISTINCT FROM NEW.name
                    OR OLD.environment_id IS DISTINCT FROM NEW.environment_id)
    EXECUTE FUNCTION nullops_notify_routes();

CREATE TRIGGER deployment_services_routes_ins_del AFTER INSERT OR DELETE ON deployment_services
    FOR EACH STATEMENT EXECUTE FUNCTION nullops_notify_routes();
CREATE TRIGGER deployment_services_routes_upd AFTER UPDATE OF host_port, ingress, node_key ON deployment_services
    FOR EACH ROW WHEN (OLD.host_port IS DISTINCT FROM NEW.host_port
                    OR OLD.ingress IS DISTINCT FROM NEW.ingress
                    OR OLD.node_key IS DISTINCT FROM NEW.node_key)
    EXECUTE FUNCTION nullops_notify_routes();

CREATE TRIGGER nodes_routes_del AFTER DELETE ON nodes
    FOR EACH STATEMENT EXECUTE FUNCTION nullops_notify_routes();
CREATE TRIGGER nodes_routes_upd AFTER UPDATE OF status, host ON nodes
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.host IS DISTINCT FROM NEW.host)
    EXECUTE FUNCTION nullops_notify_routes();

CREATE TRIGGER environments_routes_upd AFTER UPDATE OF name, base_domain, host_template ON environments
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name
                    OR OLD.base_domain IS DISTINCT FROM NEW.base_domain
                    OR OLD.host_template IS DISTINCT FROM NEW.host_template)
    EXECUTE FUNCTION nullops_notify_routes();
