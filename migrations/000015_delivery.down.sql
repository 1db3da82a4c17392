UPDATE nodes SET status = 'disabled', status_reason = 'disabled by an admin' WHERE NOT enabled AND NOT revoked;
ALTER TABLE nodes DROP COLUMN unreachable_since;
