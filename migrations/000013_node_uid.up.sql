-- A node's Docker objects must be recognisable by a fresh agent on the same
-- Docker host after the previous agent's data dir was lost (new instance,
-- new certificate): every object the agent creates is labelled with this
-- random, never-reused identifier of the node (nullops.node_uid), which the
-- control plane sends with every sync. Node ids are not enough: several
-- control planes (and every test database) can share one Docker daemon.
ALTER TABLE nodes ADD COLUMN uid TEXT NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '');
ALTER TABLE nodes ADD CONSTRAINT nodes_uid_key UNIQUE (uid);
