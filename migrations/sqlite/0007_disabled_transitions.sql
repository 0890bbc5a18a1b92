-- `keywarden report` works out the hours keys were held disabled from the
-- applied changes that open and close such periods. Telling them apart from
-- the `fields` JSON of every row was most of a long report's time: each row
-- now carries its move, set when its outcome becomes `applied`
-- (`record_changes`/`complete_changes`), and a partial index holds only
-- those rows.

-- 1: an assert/reassert disabled the key (opens a period);
-- 0: a release, drift or revert moved it from disabled to enabled, or it was
--    deleted (closes one);
-- 2: a release or revert disabled it (counted as a disable, holds nothing);
-- NULL: the change is not applied or does not move `disabled`.
ALTER TABLE changes ADD COLUMN disabled_move INTEGER;

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
WHERE outcome = 'applied' AND (kind = 'deleted' OR instr(fields, '"disabled"') > 0);

-- Per key in time order, index-only for the report.
DROP INDEX changes_disabled;
CREATE INDEX changes_disabled ON changes (key_hash, at, id, disabled_move, kind, rule, key_name)
    WHERE disabled_move IS NOT NULL;
