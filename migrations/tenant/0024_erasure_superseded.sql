-- An erasure request still awaiting its second person when retention erased the document is
-- `superseded`: it leaves the pending list, and the retention's own erasure record stands.
ALTER TABLE erasure_requests
    DROP CONSTRAINT erasure_requests_status_check,
    ADD CONSTRAINT erasure_requests_status_check
        CHECK (status IN ('pending', 'erased', 'superseded'));
UPDATE erasure_requests r SET status = 'superseded'
    FROM documents d
    WHERE d.id = r.document_id AND r.status = 'pending' AND d.erased_at IS NOT NULL;
