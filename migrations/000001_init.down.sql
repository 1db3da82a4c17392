DROP TABLE IF EXISTS audit_log, deployment_history, step_logs, deployment_steps, deployment_services,
    deployments, agent_events, nodes, pipeline_versions, access_grants, secrets, projects,
    environments, plugins, services, registries, team_members, teams, api_tokens, sessions, users CASCADE;
