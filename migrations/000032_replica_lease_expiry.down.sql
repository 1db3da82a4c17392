ALTER TABLE replicas DROP COLUMN IF EXISTS lease_expires_at;
