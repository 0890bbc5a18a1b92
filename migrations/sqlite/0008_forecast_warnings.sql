-- budget_forecast (SPEC §11 "Early warnings") is sent once per `warn_before`
-- horizon per window per key or group: the first time in a window that the
-- projected crossing comes within the horizon.
CREATE TABLE forecast_warnings (
    rule         TEXT NOT NULL,
    subject      TEXT NOT NULL,           -- key hash, or '' for a group budget
    window       TEXT NOT NULL,
    window_start TEXT NOT NULL,
    horizon_secs INTEGER NOT NULL,
    at           TEXT NOT NULL,
    PRIMARY KEY (rule, subject, window, window_start, horizon_secs)
);
