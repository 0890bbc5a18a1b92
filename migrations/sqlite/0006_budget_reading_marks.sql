-- Budget readings are sampled like usage snapshots: a rule's readings are
-- recorded in a run that changed a key under that rule, or when at least
-- `[history].snapshot_interval` has passed since they were last recorded.

-- When each rule's readings were last recorded (the run's started_at).
CREATE TABLE budget_reading_marks (
    rule        TEXT NOT NULL PRIMARY KEY,
    at          TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO budget_reading_marks (rule, at)
SELECT rule, MAX(at) FROM budget_readings GROUP BY rule;
