-- `changes_report` held each change's outcome, so completing a run's rows
-- (`pending` -> `applied`) deleted and re-inserted 10,000 of its entries:
-- about half the time of recording and completing a 10,000-change run.
-- Since 0010 the reports by time count `change_tallies`; the reports by key
-- and by rule still read a period's changes through this index and now
-- take each row's outcome from the table (the rows of a period are
-- consecutive ids, so these reads go through the table in order). The
-- columns after `at` are the ones that tell a run's rows apart first.
DROP INDEX changes_report;
CREATE INDEX changes_report ON changes (at, key_hash, rule, kind);
