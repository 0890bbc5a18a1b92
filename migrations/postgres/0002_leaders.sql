-- Who leads (SPEC §14): the process holding the leadership advisory lock
-- writes itself here when it takes the lock, so that a standby, a manual
-- `apply` waiting for its turn and the next leader can name it. One row.
CREATE TABLE leaders (
    id     BIGINT PRIMARY KEY CHECK (id = 1),
    host   TEXT COLLATE "C" NOT NULL,
    pid    BIGINT NOT NULL,
    since  TEXT COLLATE "C" NOT NULL
);
