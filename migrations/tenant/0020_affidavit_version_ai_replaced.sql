-- The draft whose declared AI draft its author replaced is kept as a version, with that AI draft:
-- every AI draft of an affidavit is kept, not only the one in force at submission.
ALTER TABLE affidavit_versions DROP CONSTRAINT affidavit_versions_reason_check;
ALTER TABLE affidavit_versions ADD CONSTRAINT affidavit_versions_reason_check
    CHECK (reason IN ('submitted', 'returned_for_revision', 'amended', 'ai_draft_replaced'));
