-- Where the ingress reaches a service's published port when that is not its
-- node's host: the address the agent's operator configured for it (a
-- Kubernetes agent's kubernetes.routehost: a load balancer or a cluster node
-- address in front of the NodePorts). '' = the node's host, as before.
-- A change of it changes the service's route: the route trigger of 000030
-- watches it too.

ALTER TABLE deployment_services ADD COLUMN route_host TEXT NOT NULL DEFAULT '';

DROP TRIGGER deployment_services_routes_upd ON deployment_services;
CREATE TRIGGER deployment_services_routes_upd
    AFTER UPDATE OF host_port, route_host, ingress, node_key, deployment_id ON deployment_services
    FOR EACH ROW WHEN (OLD.host_port IS DISTINCT FROM NEW.host_port
                    OR OLD.route_host IS DISTINCT FROM NEW.route_host
                    OR OLD.ingress IS DISTINCT FROM NEW.ingress
                    OR OLD.node_key IS DISTINCT FROM NEW.node_key
                    OR OLD.deployment_id IS DISTINCT FROM NEW.deployment_id)
    EXECUTE FUNCTION nullops_notify_routes_service();
