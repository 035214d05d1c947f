-- Documents may also be kept as files in a directory of the server's (`WRIT_DOCUMENT_STORE=
-- file:///…`, docs/DOCUMENTS.md): storage `file`, one object per document under `storage_key`
-- like `s3`. The checks of 0010 that named only `postgres` and `s3` are replaced (they were
-- created unnamed, so they are found by what they check).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'documents'::regclass AND contype = 'c'
               AND pg_get_constraintdef(oid) LIKE '%''s3''%'
    LOOP
        EXECUTE format('ALTER TABLE documents DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE documents
    ADD CONSTRAINT documents_storage_kind CHECK (storage IN ('postgres', 's3', 'file')),
    ADD CONSTRAINT documents_object_key CHECK ((storage IN ('s3', 'file')) = (storage_key IS NOT NULL));
