-- Completing a change no longer rewrites its wide row in `changes` (and
-- the entries of its six indexes): the outcome of the PATCH goes into the
-- narrow table `change_outcomes`, written by INSERT. The row in `changes`
-- keeps the outcome it was recorded with (`pending` for a change to be
-- sent); every reader takes the completion's when there is one, through
-- the view `change_rows`.

-- What completion writes: one row per completed change (a row resolved
-- again, `unknown` then `applied`, keeps its last completion).
CREATE TABLE change_outcomes (
    change_id   INTEGER PRIMARY KEY REFERENCES changes (id),
    outcome     TEXT NOT NULL,            -- applied | failed | unknown | ...
    error       TEXT,
    http_status INTEGER,
    attempts    INTEGER NOT NULL
);

-- The rows a run resolves (SPEC 4.5): recorded `pending` and not yet
-- completed, or completed `unknown`. It replaces the partial index
-- `changes_open`, which would have kept every row recorded `pending`.
CREATE TABLE open_changes (
    change_id   INTEGER PRIMARY KEY REFERENCES changes (id)
);
INSERT INTO open_changes (change_id)
    SELECT id FROM changes WHERE outcome IN ('pending', 'unknown') ORDER BY id;
DROP INDEX changes_open;

-- `disabled_move` is now how the row moves `disabled` once applied, written
-- when it is recorded whatever its outcome (the view and the report count
-- it only for applied rows). Rows still open get theirs here, as 0007
-- gave the applied ones.
UPDATE changes SET disabled_move =
    CASE WHEN kind = 'deleted' THEN 0
         WHEN kind IN ('assert', 'reassert')
              AND json_extract(fields, '$.disabled.to') = 1 THEN 1
         WHEN kind IN ('release', 'drift', 'revert')
              AND json_extract(fields, '$.disabled.from') = 1
              AND json_extract(fields, '$.disabled.to') = 0 THEN 0
         WHEN kind IN ('release', 'revert')
              AND json_extract(fields, '$.disabled.to') = 1 THEN 2
    END
WHERE outcome IN ('pending', 'unknown') AND (kind = 'deleted' OR instr(fields, '"disabled"') > 0);

-- The report reads the recorded outcome beside the move (index-only), and
-- the completion's by primary key.
DROP INDEX changes_disabled;
CREATE INDEX changes_disabled ON changes (key_hash, at, id, disabled_move, kind, rule, key_name, outcome)
    WHERE disabled_move IS NOT NULL;

-- A change as history shows it: the recorded row with its completion.
CREATE VIEW change_rows AS
SELECT c.id, c.run_id, c.at, c.rule, c.key_hash, c.key_name, c.kind, c.fields, c.reason,
       c.outcome AS recorded_outcome,
       COALESCE(o.outcome, c.outcome) AS outcome,
       CASE WHEN o.change_id IS NULL THEN c.error ELSE o.error END AS error,
       CASE WHEN o.change_id IS NULL THEN c.http_status ELSE o.http_status END AS http_status,
       COALESCE(o.attempts, c.attempts) AS attempts,
       c.request_id,
       CASE WHEN COALESCE(o.outcome, c.outcome) = 'applied' THEN c.disabled_move END
           AS disabled_move
FROM changes c LEFT JOIN change_outcomes o ON o.change_id = c.id;
