-- The dashboard's Overview lists the newest changes held by the
-- blast-radius guard: without this index that is a walk over the whole
-- history when (as usual) few or none are held.
CREATE INDEX changes_held ON changes (at, id) WHERE outcome = 'held';
