-- State that several nullops-server replicas on one database share
-- (docs/high-availability.md): nothing a request or a job depends on may
-- live only in one process's memory.

-- Login throttling (server/auth, throttle.go): recent password failures per
-- key, "u:" username NUL address or "a:" address. A row is forgotten at
-- forget_at (its last failure plus its delay plus the window).
CREATE TABLE login_throttle (
    key       text PRIMARY KEY,
    failures  integer NOT NULL CHECK (failures > 0),
    last_at   timestamptz NOT NULL,
    forget_at timestamptz NOT NULL
);
CREATE INDEX login_throttle_forget_idx ON login_throttle (forget_at);

-- The route table each nullops-ingress instance serves, as its last poll
-- said (If-None-Match), whichever replica it polled; instance '' stands for
-- ingresses that do not confirm (Traefik). Route withdrawal waits on these
-- (server/ingresspub, withdraw.go); every change is announced on
-- nullops_ingress_polls.
CREATE TABLE ingress_polls (
    instance  text PRIMARY KEY,
    etag      text NOT NULL,
    polled_at timestamptz NOT NULL
);
