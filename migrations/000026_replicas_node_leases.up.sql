-- High availability (docs/architecture.md, "Server ↔ agent channel",
-- "Replicas and node leases"): every nullops-server process is a replica
-- registered here; a node is dialled only by the replica holding its lease.
-- Acquiring a lease and every dial increase nodes.conn_epoch, the fencing
-- token the agent and the event transactions check.
CREATE TABLE replicas (
    id           TEXT PRIMARY KEY,
    api_url      TEXT NOT NULL,               -- internal base URL other replicas forward node-bound calls to
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE nodes
    -- Deleting a replica's row (graceful shutdown, pruning a long-dead one)
    -- releases its leases.
    ADD COLUMN owner_replica    TEXT REFERENCES replicas(id) ON DELETE SET NULL,
    ADD COLUMN lease_expires_at TIMESTAMPTZ;
CREATE INDEX nodes_owner_replica ON nodes (owner_replica) WHERE owner_replica IS NOT NULL;
