DROP INDEX IF EXISTS nodes_owner_replica;
ALTER TABLE nodes DROP COLUMN IF EXISTS lease_expires_at, DROP COLUMN IF EXISTS owner_replica;
DROP TABLE IF EXISTS replicas;
