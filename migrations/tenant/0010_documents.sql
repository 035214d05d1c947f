-- The encrypted document store (docs/DOCUMENTS.md): documents of warrants, sealed with a data key
-- of their own (`data_keys`, id = document id), their ciphertext records, legal holds, and
-- two-person erasure with signed certificates of deletion.

CREATE TABLE documents (
    agency_id      uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id             uuid PRIMARY KEY,
    warrant_id     uuid NOT NULL REFERENCES warrants (id),
    filename       text,
    -- Sniffed from the bytes at upload, never taken from the client's header alone.
    content_type   text NOT NULL,
    -- 1 public, 2 internal, 3 sensitive, 4 criminal-justice information (never erased by retention).
    classification smallint NOT NULL DEFAULT 4 CHECK (classification BETWEEN 1 AND 4),
    size           bigint NOT NULL CHECK (size >= 0),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    chunks         bigint NOT NULL CHECK (chunks > 0),
    sealed_size    bigint NOT NULL CHECK (sealed_size > 0),
    -- Where the ciphertext is: `postgres` (the sealed header here, records in document_chunks) or
    -- `s3` (one object, header included, under `storage_key`).
    storage        text NOT NULL CHECK (storage IN ('postgres', 's3')),
    storage_key    text,
    seal_header    bytea,
    uploaded_by    uuid NOT NULL REFERENCES users (id),
    uploaded_at    timestamptz NOT NULL,
    -- Soft delete: hidden from every reader, kept (retention and legal holds still apply).
    deleted_at     timestamptz,
    deleted_by     uuid REFERENCES users (id),
    legal_hold_reason text,
    legal_hold_by  uuid REFERENCES users (id),
    legal_hold_at  timestamptz,
    -- Crypto-erase: the data key and the ciphertext are gone; this row (hash, size) stays as the
    -- record of what was destroyed.
    erased_at      timestamptz,
    erasure_id     uuid,
    -- When the ciphertext itself was removed (with the erasure for postgres; after it for s3,
    -- retried by the retention job while null).
    ciphertext_destroyed_at timestamptz,
    CHECK ((storage = 'postgres') = (seal_header IS NOT NULL)),
    CHECK ((storage = 's3') = (storage_key IS NOT NULL)),
    CHECK ((legal_hold_at IS NULL) = (legal_hold_reason IS NULL))
);
CREATE INDEX documents_warrant ON documents (warrant_id, uploaded_at);
CREATE INDEX documents_retention ON documents (classification, uploaded_at) WHERE erased_at IS NULL;
CREATE INDEX documents_ciphertext_pending ON documents (erased_at)
    WHERE erased_at IS NOT NULL AND ciphertext_destroyed_at IS NULL;
GRANT SELECT, INSERT, UPDATE ON documents TO {{agency_role}};

-- The sealed records (64 KiB of plaintext and a 16-byte tag each) of documents stored in
-- PostgreSQL, read back in `idx` order. The rows of one upload commit with its document row; the
-- key is deferred so the document row can be written once the stream's hash and size are known.
CREATE TABLE document_chunks (
    agency_id   uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    document_id uuid NOT NULL REFERENCES documents (id) DEFERRABLE INITIALLY DEFERRED,
    idx         integer NOT NULL CHECK (idx >= 0),
    bytes       bytea NOT NULL,
    PRIMARY KEY (document_id, idx)
);
-- Storage of whole records, uncompressed: ciphertext does not compress.
ALTER TABLE document_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
-- No UPDATE: a record never changes. DELETE only of an erased document's records (trigger below).
GRANT SELECT, INSERT, DELETE ON document_chunks TO {{agency_role}};

-- Erasure: requested by one person, approved by another (or done by the retention job, with no
-- person); the certificate of deletion is signed once the `document.erase` entry is sequenced.
CREATE TABLE erasure_requests (
    agency_id    uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id           uuid PRIMARY KEY,
    document_id  uuid NOT NULL REFERENCES documents (id),
    reason       text NOT NULL,
    -- 'retention': the daily job erased the document under the agency's retention policy.
    kind         text NOT NULL DEFAULT 'request' CHECK (kind IN ('request', 'retention')),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'erased')),
    requested_by uuid REFERENCES users (id),
    requested_at timestamptz NOT NULL,
    approved_by  uuid REFERENCES users (id),
    erased_at    timestamptz,
    -- The `document.erase` audit event that recorded the erasure (its seq goes in the certificate).
    audit_event_id uuid,
    certificate  jsonb,
    CHECK (kind = 'retention' OR requested_by IS NOT NULL),
    -- Two different people (DESIGN §3).
    CHECK (approved_by IS NULL OR approved_by <> requested_by),
    CHECK ((status = 'erased') = (erased_at IS NOT NULL AND audit_event_id IS NOT NULL))
);
CREATE UNIQUE INDEX erasure_requests_one_open ON erasure_requests (document_id) WHERE status = 'pending';
GRANT SELECT, INSERT, UPDATE ON erasure_requests TO {{agency_role}};

-- Erasure destroys the document's data key. The agency role may delete a data key only when it
-- is the key of a document already marked erased in the same transaction and not under a legal
-- hold: every other data key keeps the guarantee of 0006 (never deleted by the agency role).
GRANT DELETE ON data_keys TO {{agency_role}};
CREATE FUNCTION data_keys_erase_only() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = OLD.id AND d.erased_at IS NOT NULL
                   AND d.legal_hold_at IS NULL) THEN
        RAISE EXCEPTION 'data key % is not the key of an erased document: DELETE refused', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER data_keys_erase_only BEFORE DELETE ON data_keys
    FOR EACH ROW EXECUTE FUNCTION data_keys_erase_only();

CREATE FUNCTION document_chunks_erase_only() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = OLD.document_id AND d.erased_at IS NOT NULL
                   AND d.legal_hold_at IS NULL) THEN
        RAISE EXCEPTION 'document % is not erased: DELETE of its ciphertext refused', OLD.document_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER document_chunks_erase_only BEFORE DELETE ON document_chunks
    FOR EACH ROW EXECUTE FUNCTION document_chunks_erase_only();
