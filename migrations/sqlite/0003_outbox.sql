-- Notifications (SPEC §7): a durable outbox, its delivery to each webhook,
-- and what notifying once per window or per outage needs to remember.

-- Every notifiable thing, in the order it happened; `payload` is the JSON
-- object a `format = "json"` webhook receives.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    event       TEXT NOT NULL,            -- key_disabled | key_enabled | change_failed | budget_warning | guard_tripped | source_error | source_recovered | auth_failed | auth_recovered | reload_failed
    at          TEXT NOT NULL,
    payload     TEXT NOT NULL,
    change_id   INTEGER REFERENCES changes (id),
    event_id    INTEGER REFERENCES events (id)
);

-- The last change row and event already enqueued; moved in the same
-- transaction as the inserts, so an enqueue is never lost nor doubled.
-- Starts at the history present when this migration runs.
CREATE TABLE notify_cursor (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    last_change_id INTEGER NOT NULL,
    last_event_id  INTEGER NOT NULL
);
INSERT INTO notify_cursor (id, last_change_id, last_event_id)
SELECT 1, COALESCE((SELECT MAX(id) FROM changes), 0), COALESCE((SELECT MAX(id) FROM events), 0);

-- Where each webhook is in the outbox. `webhook` is a digest of its URL
-- (URLs carry secrets and are never stored); `target` is scheme://host.
CREATE TABLE deliveries (
    webhook         TEXT PRIMARY KEY,
    target          TEXT NOT NULL,
    last_outbox_id  INTEGER NOT NULL,     -- every item up to this one is delivered, skipped or given up
    attempts        INTEGER NOT NULL DEFAULT 0,  -- failed attempts of the next item
    failing_since   TEXT,                 -- first failed attempt of the next item
    next_attempt_at TEXT
);

-- Every attempt to deliver an item to a webhook.
CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    outbox_id   INTEGER NOT NULL REFERENCES outbox (id),
    webhook     TEXT NOT NULL,
    at          TEXT NOT NULL,
    status      TEXT NOT NULL,            -- delivered | failed | gave_up
    http_status INTEGER,
    error       TEXT
);
CREATE INDEX delivery_attempts_item ON delivery_attempts (outbox_id, webhook);

-- budget_warning is sent once per fraction per window per key or group.
CREATE TABLE budget_warnings (
    rule         TEXT NOT NULL,
    subject      TEXT NOT NULL,           -- key hash, or '' for a group budget
    window       TEXT NOT NULL,
    window_start TEXT NOT NULL,
    fraction     REAL NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (rule, subject, window, window_start, fraction)
);

-- Open outages (notified once, then a recovery event when they end):
-- kind 'auth' (subject '') or 'source' (subject = source id).
CREATE TABLE outages (
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    since    TEXT NOT NULL,
    run_id   INTEGER,
    PRIMARY KEY (kind, subject)
);
