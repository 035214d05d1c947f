-- Electronic signatures (DESIGN §7; docs/ESIGN.md): requests to sign a document of a warrant,
-- and the signatures applied, each with its signature record (docs/ESIGN-FORMAT.md) signed by
-- the agency's key. The rules live in writ-esign; warrant-workflow reads `signatures` to decide
-- whether a warrant may be submitted or issued.

-- The badge number of an officer, the judicial id of a judge: what a signature record names
-- besides the person's name.
ALTER TABLE users
    ADD COLUMN badge_or_judicial_id text
        CHECK (length(badge_or_judicial_id) BETWEEN 1 AND 64);

-- What a document is to its warrant: an upload, or a document the server made for signing.
ALTER TABLE documents
    ADD COLUMN kind text NOT NULL DEFAULT 'attachment'
        CHECK (kind IN ('attachment', 'affidavit', 'warrant'));

CREATE TABLE signature_requests (
    agency_id     uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id            uuid PRIMARY KEY,
    warrant_id    uuid NOT NULL REFERENCES warrants (id),
    document_id   uuid NOT NULL REFERENCES documents (id),
    -- The hash of the document when the request was made: what the signer is asked to sign.
    document_sha256 text NOT NULL CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    signer_id     uuid NOT NULL REFERENCES users (id),
    -- The statement shown to the signer and accepted by signing, exactly.
    intent        text NOT NULL CHECK (length(intent) BETWEEN 1 AND 4000),
    requested_by  uuid NOT NULL REFERENCES users (id),
    requested_at  timestamptz NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'signed', 'cancelled')),
    signed_at     timestamptz,
    CHECK ((status = 'signed') = (signed_at IS NOT NULL))
);
CREATE INDEX signature_requests_signer ON signature_requests (signer_id, requested_at)
    WHERE status = 'pending';
CREATE INDEX signature_requests_warrant ON signature_requests (warrant_id, requested_at);
GRANT SELECT, INSERT, UPDATE ON signature_requests TO {{agency_role}};

CREATE TABLE signatures (
    agency_id       uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id              uuid PRIMARY KEY,
    request_id      uuid NOT NULL UNIQUE REFERENCES signature_requests (id),
    warrant_id      uuid NOT NULL REFERENCES warrants (id),
    document_id     uuid NOT NULL REFERENCES documents (id),
    document_sha256 text NOT NULL CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    signer_id       uuid NOT NULL REFERENCES users (id),
    signer_role     text NOT NULL,
    signed_at       timestamptz NOT NULL,
    -- The `esign.applied` event that recorded the signature (its seq and hash go in the record).
    audit_event_id  uuid NOT NULL,
    -- The signature record signed at the moment of signing, before its audit entry had a seq.
    initial_record  jsonb NOT NULL,
    -- The record with `audit {seq, entryHash}`, signed once the entry is sequenced; the one
    -- served and verified. Set once.
    record          jsonb,
    completed_at    timestamptz,
    CHECK ((record IS NULL) = (completed_at IS NULL))
);
CREATE INDEX signatures_warrant ON signatures (warrant_id, signer_id, document_sha256);
GRANT SELECT, INSERT, UPDATE ON signatures TO {{agency_role}};

-- A signature is never changed once its final record is set, and never deleted.
CREATE FUNCTION signatures_complete_once() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF OLD.record IS NOT NULL OR NEW.initial_record IS DISTINCT FROM OLD.initial_record
       OR NEW.document_sha256 IS DISTINCT FROM OLD.document_sha256
       OR NEW.signer_id IS DISTINCT FROM OLD.signer_id THEN
        RAISE EXCEPTION 'signature % is final: UPDATE refused', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER signatures_complete_once BEFORE UPDATE ON signatures
    FOR EACH ROW EXECUTE FUNCTION signatures_complete_once();
