-- The same index as SQLite's migration 0011: `changes_report` without the
-- outcome, which completion changes. On SQLite that spares completion
-- rewriting the index's entries; here an UPDATE writes a new row version
-- and its entries anyway, and the index is kept the same on both backends
-- for the reports by key and by rule, which read a period's changes
-- through it and take each row's outcome from the table.
DROP INDEX changes_report;
CREATE INDEX changes_report ON changes (at, key_hash, rule, kind);
