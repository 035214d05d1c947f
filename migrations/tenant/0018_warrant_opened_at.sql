-- When a judge first opened the warrant since it was last queued. `first_opened_at` keeps the
-- first time ever (the review statistics count from the first submission); routing needs the
-- current queueing's, or a warrant returned for revision and queued again is never offered.
ALTER TABLE warrants ADD COLUMN opened_at timestamptz;
UPDATE warrants SET opened_at = first_opened_at
 WHERE first_opened_at IS NOT NULL AND (queued_at IS NULL OR first_opened_at >= queued_at);
