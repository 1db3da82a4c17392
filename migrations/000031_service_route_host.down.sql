DROP TRIGGER deployment_services_routes_upd ON deployment_services;
CREATE TRIGGER deployment_services_routes_upd AFTER UPDATE OF host_port, ingress, node_key, deployment_id ON deployment_services
    FOR EACH ROW WHEN (OLD.host_port IS DISTINCT FROM NEW.host_port
                    OR OLD.ingress IS DISTINCT FROM NEW.ingress
                    OR OLD.node_key IS DISTINCT FROM NEW.node_key
                    OR OLD.deployment_id IS DISTINCT FROM NEW.deployment_id)
    EXECUTE FUNCTION nullops_notify_routes_service();

ALTER TABLE deployment_services DROP COLUMN route_host;
