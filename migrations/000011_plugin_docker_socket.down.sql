ALTER TABLE plugins DROP COLUMN IF EXISTS docker_socket;
