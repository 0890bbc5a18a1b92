-- keywarden's schema. Times are RFC 3339 UTC text; field values are their wire JSON.

-- Rules, as their canonical JSON definition (crate::rules::model::Rule).
CREATE TABLE rules (
    name        TEXT PRIMARY KEY,
    origin      TEXT NOT NULL,            -- 'cli' or 'file:PATH'
    enabled     INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    definition  TEXT NOT NULL,            -- JSON of Rule
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Every change to a rule: who, when, the full rule before and after.
CREATE TABLE rule_revisions (
    id          INTEGER PRIMARY KEY,
    rule        TEXT NOT NULL,
    at          TEXT NOT NULL,
    who         TEXT NOT NULL,            -- 'cli' or 'file:PATH'
    before      TEXT,                     -- JSON of Rule, NULL when created
    after       TEXT                      -- JSON of Rule, NULL when removed
);
CREATE INDEX rule_revisions_rule ON rule_revisions (rule, id);

-- The keys for which each rule's `when` held at its last evaluation
-- (standing assertions of rules that are not due in a run).
CREATE TABLE rule_state (
    rule         TEXT PRIMARY KEY,
    evaluated_at TEXT NOT NULL,
    holding      TEXT NOT NULL            -- JSON array of key hashes
);

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    trigger         TEXT NOT NULL,        -- schedule | startup | reload | manual
    dry_run         INTEGER NOT NULL DEFAULT 0,
    keys_seen       INTEGER NOT NULL DEFAULT 0,
    rules_evaluated INTEGER NOT NULL DEFAULT 0,
    changes         INTEGER NOT NULL DEFAULT 0,
    applied         INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    held            INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL DEFAULT 'running', -- running | ok | failed | auth_failed | error
    error           TEXT,
    notes           TEXT                  -- JSON: skipped conditions, conflicts
);
CREATE INDEX runs_started ON runs (started_at);

-- One key x one rule x one run (SPEC 5).
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER REFERENCES runs (id),
    at          TEXT NOT NULL,
    rule        TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    key_name    TEXT NOT NULL,
    kind        TEXT NOT NULL,            -- assert | reassert | release | drift | revert | deleted
    fields      TEXT NOT NULL,            -- JSON {"field": {"from": v, "to": v}}
    reason      TEXT NOT NULL,
    outcome     TEXT NOT NULL,            -- applied | failed | dry_run | held | skipped | pending | unknown
    error       TEXT,
    http_status INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    request_id  TEXT                      -- shared by the rows of one PATCH
);
CREATE INDEX changes_at ON changes (at);
CREATE INDEX changes_key ON changes (key_hash, at);
CREATE INDEX changes_rule ON changes (rule, at);
CREATE INDEX changes_key_name ON changes (key_name);
CREATE INDEX changes_open ON changes (outcome) WHERE outcome IN ('pending', 'unknown');

-- What keywarden set on a key, and what it was before (SPEC 4.2).
CREATE TABLE claims (
    key_hash    TEXT NOT NULL,
    field       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    original    TEXT NOT NULL,            -- wire JSON of the value before
    value       TEXT NOT NULL,            -- wire JSON of the value keywarden set
    change_id   INTEGER REFERENCES changes (id),
    since       TEXT NOT NULL,
    PRIMARY KEY (key_hash, field)
);

CREATE TABLE exemptions (
    id          INTEGER PRIMARY KEY,
    key_hash    TEXT NOT NULL,
    rule        TEXT,                     -- NULL = every rule
    until       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    held_at     TEXT                      -- when it first held a change back (recorded once)
);

-- Last good value of every external budget source, and the current outage.
CREATE TABLE source_values (
    source_id   TEXT PRIMARY KEY,
    value       REAL,
    fetched_at  TEXT,
    error       TEXT,
    error_since TEXT
);

-- Things a run noticed that are not key changes: source_error, guard_tripped,
-- auth_failed, budget_warning, conflict, skipped condition.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER REFERENCES runs (id),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    rule        TEXT,
    key_hash    TEXT,
    detail      TEXT NOT NULL             -- JSON
);
CREATE INDEX events_at ON events (at);

-- Usage snapshots: one per key per snapshot_interval, when usage moved.
CREATE TABLE snapshots (
    id                 INTEGER PRIMARY KEY,
    at                 TEXT NOT NULL,
    key_hash           TEXT NOT NULL,
    disabled           INTEGER NOT NULL,
    limit_usd          REAL,
    limit_remaining    REAL,
    usage              REAL,
    usage_daily        REAL,
    usage_weekly       REAL,
    usage_monthly      REAL,
    byok_usage         REAL,
    byok_usage_daily   REAL,
    byok_usage_weekly  REAL,
    byok_usage_monthly REAL
);
CREATE INDEX snapshots_key_at ON snapshots (key_hash, at);
CREATE INDEX snapshots_at ON snapshots (at);
