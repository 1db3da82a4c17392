ALTER TABLE deployments DROP COLUMN definition;
ALTER TABLE environments DROP COLUMN cpu_overcommit;
