-- A year's `keywarden report` counted its changes per instant, kind and
-- outcome by reading every entry of `changes_report` in the period (a
-- million for a busy year). This table keeps those counts as rows are
-- recorded and completed (`record_changes`/`complete_changes`): one row
-- per run instant, kind and settled outcome, so the report reads a tally
-- a run instead of an entry a change. Rows still open (`pending`,
-- `unknown`) are not tallied until they settle; the report counts them
-- from `changes` through `changes_open`.
CREATE TABLE change_tallies (
    at      TEXT COLLATE "C" NOT NULL,
    kind    TEXT COLLATE "C" NOT NULL,
    outcome TEXT COLLATE "C" NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (at, kind, outcome)
);

INSERT INTO change_tallies (at, kind, outcome, n)
SELECT at, kind, outcome, COUNT(*) FROM changes
WHERE outcome NOT IN ('pending', 'unknown')
GROUP BY at, kind, outcome;
