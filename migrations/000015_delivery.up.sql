-- When a node's agent stopped answering (NULL while it is online). The
-- deployments of an unreachable node keep their routes for a grace period
-- (agents.offlinegrace) and are marked offline only after it.
ALTER TABLE nodes ADD COLUMN unreachable_since TIMESTAMPTZ;

-- Existing disabled nodes were disconnected; a disabled node now stays
-- connected and drains: its connection status is found again on the next
-- connect.
UPDATE nodes SET status = 'offline', status_reason = 'draining (disabled by an admin)'
    WHERE status = 'disabled';
UPDATE nodes SET unreachable_since = COALESCE(last_seen_at, now()) WHERE status <> 'online';
