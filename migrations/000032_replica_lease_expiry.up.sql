-- Node leases expire with their replica (docs/architecture.md, "Replicas
-- and node leases"): a replica's heartbeat extends replicas.lease_expires_at,
-- and a node's lease is live while its owner_replica's is. Renewing thousands
-- of leases used to rewrite every node row every third of the TTL.
-- nodes.lease_expires_at now only records when a lease was released (for
-- "free for longer than the TTL"); it is 'infinity' while a replica of this
-- version holds the node, which replicas of the previous version read as a
-- live lease, so the two never take each other's nodes during an upgrade.
ALTER TABLE replicas ADD COLUMN lease_expires_at TIMESTAMPTZ NOT NULL DEFAULT now();
