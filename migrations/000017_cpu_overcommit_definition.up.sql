-- CPU is compressible: placement counts reservations strictly and OS-level
-- CPU use only as the node's smoothed non-NullOps use, allowing reservations
-- plus that use up to cpu_overcommit times a node's CPUs.
ALTER TABLE environments ADD COLUMN cpu_overcommit DOUBLE PRECISION NOT NULL DEFAULT 1.5
    CHECK (cpu_overcommit >= 1 AND cpu_overcommit <= 10);

-- The resolved definition a deployment was created with (services, plugin
-- limits, shares; secret references, never their values), used for its
-- syncs and retries. NULL for deployments created before it was recorded.
ALTER TABLE deployments ADD COLUMN definition JSONB;
