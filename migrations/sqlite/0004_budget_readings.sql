-- Budget readings (SPEC §5 "spend against each budget") move from
-- `runs.notes.budgets` to a table of their own, so that `keywarden report`
-- aggregates them with an index instead of parsing every run's notes.

-- One reading per run, rule, window and key (NULL key: a group budget).
CREATE TABLE budget_readings (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    at          TEXT NOT NULL,            -- the run's started_at
    rule        TEXT NOT NULL,
    key_hash    TEXT,
    window      TEXT NOT NULL,            -- daily | weekly | monthly | total
    spend_usd   REAL NOT NULL,
    budget_usd  REAL NOT NULL
);
-- Readings in a period, index-only.
CREATE INDEX budget_readings_at
    ON budget_readings (at, rule, window, key_hash, spend_usd, budget_usd);

INSERT INTO budget_readings (run_id, at, rule, key_hash, window, spend_usd, budget_usd)
SELECT r.id, r.started_at,
       json_extract(b.value, '$.rule'), json_extract(b.value, '$.key_hash'),
       json_extract(b.value, '$.window'), json_extract(b.value, '$.spend_usd'),
       json_extract(b.value, '$.budget_usd')
FROM runs r, json_each(r.notes, '$.budgets') b
WHERE json_valid(r.notes)
  AND json_extract(b.value, '$.rule') IS NOT NULL
  AND json_extract(b.value, '$.window') IS NOT NULL
  AND json_extract(b.value, '$.spend_usd') IS NOT NULL
  AND json_extract(b.value, '$.budget_usd') IS NOT NULL
ORDER BY r.id, b.key;

UPDATE runs SET notes = json_remove(notes, '$.budgets')
WHERE json_valid(notes) AND json_type(notes, '$.budgets') IS NOT NULL;

-- `changes_report (at, …)` starts with `at`: this one is redundant.
DROP INDEX changes_at;
