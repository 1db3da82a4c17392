-- Access to the node's Docker socket (root on the node) is an explicit
-- plugin setting that only an admin sets, never implied by a plugin's name.
-- Existing plugins, "exec" included, start without it.
ALTER TABLE plugins ADD COLUMN docker_socket BOOLEAN NOT NULL DEFAULT FALSE;
