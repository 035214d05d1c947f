-- A pending erasure request can be withdrawn (by its requester, or declined by a second person):
-- it leaves the pending list with who closed it, when and why, and the document stays.
ALTER TABLE erasure_requests
    DROP CONSTRAINT erasure_requests_status_check,
    ADD CONSTRAINT erasure_requests_status_check
        CHECK (status IN ('pending', 'erased', 'superseded', 'withdrawn')),
    ADD COLUMN withdrawn_by uuid REFERENCES users (id),
    ADD COLUMN withdrawn_at timestamptz,
    ADD COLUMN withdraw_reason text,
    ADD CONSTRAINT erasure_requests_withdrawn_check
        CHECK ((status = 'withdrawn') = (withdrawn_at IS NOT NULL AND withdrawn_by IS NOT NULL
                                         AND withdraw_reason IS NOT NULL));
