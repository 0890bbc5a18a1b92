-- Equal-priority conflicts (SPEC §4 step 3) that are recorded and still
-- hold: a conflict is recorded as an event in the run where it begins, not
-- again while it lasts, and again if it ends and begins anew.

-- One row per open conflict: the winning and the losing rule of one field
-- of one key (several rules may lose one field to the same winner).
CREATE TABLE open_conflicts (
    key_hash    TEXT NOT NULL,
    field       TEXT NOT NULL,
    winner      TEXT NOT NULL,
    loser       TEXT NOT NULL,
    since       TEXT NOT NULL,            -- when it was recorded
    PRIMARY KEY (key_hash, field, winner, loser)
) WITHOUT ROWID;
