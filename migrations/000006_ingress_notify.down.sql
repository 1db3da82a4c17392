DROP TRIGGER IF EXISTS environments_routes_upd ON environments;
DROP TRIGGER IF EXISTS nodes_routes_upd ON nodes;
DROP TRIGGER IF EXISTS nodes_routes_del ON nodes;
DROP TRIGGER IF EXISTS deployment_services_routes_upd ON deployment_services;
DROP TRIGGER IF EXISTS deployment_services_routes_ins_del ON deployment_services;
DROP TRIGGER IF EXISTS deployments_routes_upd ON deployments;
DROP TRIGGER IF EXISTS deployments_routes_ins_del ON deployments;
DROP FUNCTION IF EXISTS nullops_notify_routes();
