-- Indexes for `keywarden report` (SPEC §5), so that it answers over
-- millions of rows without reading the table.

-- Counting changes per kind and outcome in a period: index-only.
CREATE INDEX changes_report ON changes (at, kind, outcome, rule, key_hash);

-- The applied changes that disable, re-enable or delete a key, per key in
-- time order: the rows that open and close "held disabled" periods.
CREATE INDEX changes_disabled ON changes (key_hash, at)
    WHERE outcome = 'applied' AND (kind = 'deleted' OR instr(fields, '"disabled"') > 0);

-- Counting events of a kind in a period.
CREATE INDEX events_kind_at ON events (kind, at);
