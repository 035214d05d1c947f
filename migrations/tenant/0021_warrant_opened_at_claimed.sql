-- 0018 left opened_at empty for warrants claimed again after a return for revision (their first
-- opening predates the last queueing): a claim opens a warrant, so they were opened by then.
UPDATE warrants SET opened_at = greatest(first_opened_at, queued_at)
 WHERE opened_at IS NULL AND claimed_by IS NOT NULL;
