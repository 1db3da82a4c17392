-- NullOps initial schema. Never edit once released; add a new migration instead.

-- Identity -----------------------------------------------------------------
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id_hash      BYTEA PRIMARY KEY,            -- SHA-256 of the cookie value
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    client_addr  TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL          -- absolute expiry
);
CREATE INDEX sessions_user_idx ON sessions(user_id);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,        -- SHA-256 of the token
    prefix       TEXT NOT NULL,                -- first characters, to recognise a token
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_tokens_user_idx ON api_tokens(user_id);

CREATE TABLE teams (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE team_members (
    team_id    BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members(user_id);

-- Catalog ------------------------------------------------------------------
CREATE TABLE registries (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    url          TEXT NOT NULL,                 -- e.g. https://registry-1.docker.io or 127.0.0.1:5000
    username     TEXT NOT NULL DEFAULT '',
    password_enc BYTEA,                         -- AES-256-GCM, see server/secretbox
    key_id       TEXT NOT NULL DEFAULT '',
    insecure     BOOLEAN NOT NULL DEFAULT FALSE, -- plain HTTP (loopback registries)
    is_default   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO registries (name, url, is_default) VALUES ('docker-hub', 'https://registry-1.docker.io', TRUE);

CREATE TABLE services (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    registry_id BIGINT NOT NULL REFERENCES registries(id),
    image       TEXT NOT NULL,
    tag_mode    TEXT NOT NULL CHECK (tag_mode IN ('pinned', 'selectable')),
    tag         TEXT NOT NULL DEFAULT '',        -- pinned mode
    tag_pattern TEXT NOT NULL DEFAULT '',        -- selectable mode (glob)
    ports       JSONB NOT NULL DEFAULT '[]',     -- container ports
    env         JSONB NOT NULL DEFAULT '{}',
    health      JSONB NOT NULL DEFAULT '{}',     -- {"http": "/healthz"} or {"command": [...]}
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE plugins (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    registry_id     BIGINT NOT NULL REFERENCES registries(id),
    image           TEXT NOT NULL,
    tag             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    params_schema   JSONB NOT NULL DEFAULT '{}',
    cpu             DOUBLE PRECISION NOT NULL DEFAULT 0.5,
    memory_mb       INTEGER NOT NULL DEFAULT 128,
    timeout_seconds INTEGER NOT NULL DEFAULT 300,
    join_network    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE environments (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    base_domain         TEXT NOT NULL,
    host_template       TEXT NOT NULL DEFAULT '', -- '' = <service>.<deployment>.<environment>.<base-domain>
    default_ttl_seconds BIGINT NOT NULL DEFAULT 604800,
    traffic_is_activity BOOLEAN NOT NULL DEFAULT TRUE,
    description         TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    description   TEXT NOT NULL DEFAULT '',
    cpu           DOUBLE PRECISION NOT NULL DEFAULT 1,
    memory_mb     INTEGER NOT NULL DEFAULT 512,
    ttl_seconds   BIGINT,                        -- NULL = environment default
    node_selector JSONB NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE secrets (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE, -- NULL = global
    value_enc  BYTEA NOT NULL,
    key_id     TEXT NOT NULL,
    updated_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (name, project_id)
);

CREATE TABLE access_grants (
    id             BIGSERIAL PRIMARY KEY,
    team_id        BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    project_id     BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    environment_id BIGINT REFERENCES environments(id) ON DELETE CASCADE,
    level          TEXT NOT NULL CHECK (level IN ('read', 'full')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((project_id IS NULL) <> (environment_id IS NULL)),
    UNIQUE (team_id, project_id),
    UNIQUE (team_id, environment_id)
);

CREATE TABLE pipeline_versions (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    graph       JSONB NOT NULL,
    plugin_pins JSONB NOT NULL DEFAULT '{}',      -- plugin name -> image:tag at save time
    created_by  BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, version)
);

-- Nodes and the agent channel ---------------------------------------------
CREATE TABLE nodes (
    id                  BIGSERIAL PRIMARY KEY,
    environment_id      BIGINT NOT NULL REFERENCES environments(id),
    name                TEXT NOT NULL,
    host                TEXT NOT NULL,
    port                INTEGER NOT NULL CHECK (port > 0 AND port < 65536),
    token_enc           BYTEA,                    -- AES-256-GCM; NULL once revoked
    token_key_id        TEXT NOT NULL DEFAULT '',
    token_generation    INTEGER NOT NULL DEFAULT 1,
    expected_thumbprint TEXT NOT NULL DEFAULT '', -- set by admin, or recorded on first use
    seen_thumbprint     TEXT NOT NULL DEFAULT '', -- last thumbprint presented by the agent
    status              TEXT NOT NULL DEFAULT 'offline'
                        CHECK (status IN ('online', 'offline', 'untrusted', 'incompatible', 'disabled', 'revoked')),
    status_reason       TEXT NOT NULL DEFAULT '',
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    revoked             BOOLEAN NOT NULL DEFAULT FALSE,
    labels              JSONB NOT NULL DEFAULT '{}',
    agent_version       TEXT NOT NULL DEFAULT '',
    protocol_version    INTEGER NOT NULL DEFAULT 0,
    agent_instance      TEXT NOT NULL DEFAULT '', -- id of the agent's data dir (its event journal)
    capacity            JSONB NOT NULL DEFAULT '{}', -- {"cpus":..,"memory_mb":..,"disk_mb":..}
    usage               JSONB NOT NULL DEFAULT '{}',
    last_acked_seq      BIGINT NOT NULL DEFAULT 0,
    last_seen_at        TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (environment_id, name)
);

-- Every journaled agent event, applied exactly once (primary key = idempotency).
CREATE TABLE agent_events (
    node_id        BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    agent_instance TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    type           TEXT NOT NULL,
    body           JSONB NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, agent_instance, seq)
);

-- Deployments --------------------------------------------------------------
CREATE TABLE deployments (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT NOT NULL,
    project_id          BIGINT NOT NULL REFERENCES projects(id),
    environment_id      BIGINT NOT NULL REFERENCES environments(id),
    node_id             BIGINT REFERENCES nodes(id),
    pipeline_version_id BIGINT NOT NULL REFERENCES pipeline_versions(id),
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'deploying', 'running', 'failed', 'offline', 'deleting', 'deleted')),
    status_reason       TEXT NOT NULL DEFAULT '',
    failed_step         TEXT NOT NULL DEFAULT '',
    owner_id            BIGINT REFERENCES users(id) ON DELETE SET NULL,
    cloned_from         BIGINT REFERENCES deployments(id) ON DELETE SET NULL,
    tags                JSONB NOT NULL DEFAULT '{}', -- service name -> chosen tag
    cpu                 DOUBLE PRECISION NOT NULL,   -- reserved on the node
    memory_mb           INTEGER NOT NULL,
    ttl_seconds         BIGINT NOT NULL,
    last_activity_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at          TIMESTAMPTZ NOT NULL,
    delete_pending      BOOLEAN NOT NULL DEFAULT FALSE, -- delete requested while the node was offline
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ
);
CREATE UNIQUE INDEX deployments_name_live_idx ON deployments(environment_id, name) WHERE status <> 'deleted';
CREATE INDEX deployments_node_idx ON deployments(node_id) WHERE status <> 'deleted';
CREATE INDEX deployments_expires_idx ON deployments(expires_at) WHERE status IN ('running', 'failed', 'offline', 'deploying');

CREATE TABLE deployment_services (
    deployment_id  BIGINT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    node_key       TEXT NOT NULL,                 -- pipeline node id
    service_id     BIGINT REFERENCES services(id) ON DELETE SET NULL,
    image          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    container_port INTEGER NOT NULL DEFAULT 0,
    host_port      INTEGER NOT NULL DEFAULT 0,
    ingress        BOOLEAN NOT NULL DEFAULT FALSE,
    health         TEXT NOT NULL DEFAULT 'unknown',
    cpu_percent    DOUBLE PRECISION NOT NULL DEFAULT 0,
    memory_bytes   BIGINT NOT NULL DEFAULT 0,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (deployment_id, node_key)
);

CREATE TABLE deployment_steps (
    deployment_id BIGINT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    node_key      TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('service', 'component')),
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    attempt       INTEGER NOT NULL DEFAULT 0,
    message       TEXT NOT NULL DEFAULT '',
    outputs       JSONB NOT NULL DEFAULT '{}',
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    PRIMARY KEY (deployment_id, node_key)
);

CREATE TABLE step_logs (
    id            BIGSERIAL PRIMARY KEY,
    deployment_id BIGINT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    node_key      TEXT NOT NULL,
    attempt       INTEGER NOT NULL DEFAULT 1,
    chunk         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX step_logs_deployment_idx ON step_logs(deployment_id, node_key, id);

CREATE TABLE deployment_history (
    id            BIGSERIAL PRIMARY KEY,
    deployment_id BIGINT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    actor_id      BIGINT REFERENCES users(id) ON DELETE SET NULL,
    actor_name    TEXT NOT NULL DEFAULT '',
    action        TEXT NOT NULL,
    detail        JSONB NOT NULL DEFAULT '{}',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX deployment_history_dep_idx ON deployment_history(deployment_id, id);

-- Audit --------------------------------------------------------------------
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    actor_id    BIGINT REFERENCES users(id) ON DELETE SET NULL,
    actor_name  TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    project_id     BIGINT,  -- for visibility filtering of non-admin readers
    environment_id BIGINT,
    client_addr TEXT NOT NULL DEFAULT '',
    detail      JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_created_idx ON audit_log(created_at DESC);
CREATE INDEX audit_log_action_idx ON audit_log(action);
