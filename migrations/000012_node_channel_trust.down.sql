DROP TABLE node_events;
ALTER TABLE nodes
    DROP COLUMN conn_epoch,
    DROP COLUMN token_prev_enc,
    DROP COLUMN token_prev_key_id,
    DROP COLUMN token_rotation_pending,
    DROP COLUMN token_revoke_pending;
