-- Node token rotation that completes on the agent, connection epochs, and
-- the node's channel events (refused or replaced control-plane connections,
-- token rotations and revocations as the agent applied them).
ALTER TABLE nodes
    ADD COLUMN conn_epoch             BIGINT  NOT NULL DEFAULT 0,     -- increased for every dial
    ADD COLUMN token_prev_enc         BYTEA,                          -- the token the agent still accepts while a rotation is pending
    ADD COLUMN token_prev_key_id      TEXT    NOT NULL DEFAULT '',
    ADD COLUMN token_rotation_pending BOOLEAN NOT NULL DEFAULT FALSE, -- the agent has not confirmed the new token yet
    ADD COLUMN token_revoke_pending   BOOLEAN NOT NULL DEFAULT FALSE; -- revoked while offline; told on the next connection

CREATE TABLE node_events (
    id       BIGSERIAL PRIMARY KEY,
    node_id  BIGINT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL DEFAULT '',
    remote   TEXT NOT NULL DEFAULT '',
    source   TEXT NOT NULL DEFAULT 'server' CHECK (source IN ('server', 'agent')),
    at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX node_events_node_id ON node_events (node_id, id DESC);
