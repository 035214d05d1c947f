-- Warrants (DESIGN §4): applications and their lifecycle, affidavit versions, deadline reminders.
-- The rules (who may move a warrant where, deadlines, completeness) live in writ-warrant-workflow;
-- these tables only hold what happened.

-- The warrant-types policy is named with a dash (`warrant-types`, docs/WARRANT-TYPES.md).
ALTER TABLE policies DROP CONSTRAINT policies_name_check;
ALTER TABLE policies ADD CONSTRAINT policies_name_check CHECK (name ~ '^[a-z][a-z0-9_.-]{0,62}$');

-- One counter per agency and year: W-2026-000847 is the 847th warrant the agency opened in 2026.
-- Taken with an upsert in the creating transaction, so numbers are unique and gaps appear only
-- where a transaction rolled back.
CREATE TABLE warrant_counters (
    agency_id uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    year      integer NOT NULL CHECK (year BETWEEN 1000 AND 9999),
    last      integer NOT NULL CHECK (last > 0),
    PRIMARY KEY (agency_id, year)
);
GRANT SELECT, INSERT, UPDATE ON warrant_counters TO {{agency_role}};

CREATE TABLE warrants (
    agency_id        uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id               uuid PRIMARY KEY,
    number           text NOT NULL CHECK (number ~ '^W-[0-9]{4}-[0-9]{6}$'),
    -- An extension request points at the warrant it extends.
    parent_id        uuid REFERENCES warrants (id),
    court            text NOT NULL,
    type_key         text NOT NULL,
    -- The court's rules for this type and its time zone, as in force when the application was
    -- created or last submitted: the deadline is computed from them at issue and execution is
    -- checked against them, whatever the policy says later.
    type_rules       jsonb NOT NULL,
    time_zone        text NOT NULL,
    urgency          text NOT NULL DEFAULT 'routine' CHECK (urgency IN ('routine', 'urgent', 'exigent')),
    content          jsonb NOT NULL,
    ai_assisted      boolean NOT NULL DEFAULT false,
    ai_tool          text,
    ai_draft         text,
    author_id        uuid NOT NULL REFERENCES users (id),
    state            text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'supervisor_review',
                         'prosecutor_review', 'pending_judge', 'judge_review', 'issued', 'executed',
                         'returned', 'rejected', 'withdrawn', 'expired')),
    -- Optimistic concurrency: every change adds one; a request naming an older one is refused.
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    supervisor_approved_by uuid REFERENCES users (id),
    supervisor_approved_at timestamptz,
    prosecutor_approved_by uuid REFERENCES users (id),
    prosecutor_approved_at timestamptz,
    -- How many times the application went back for revision (0 = first pass).
    revisions        integer NOT NULL DEFAULT 0,
    last_reason      text,
    claimed_by       uuid REFERENCES users (id),
    -- Review telemetry (DOMAIN: submitted, opened and decided times are kept as data).
    submitted_at     timestamptz,
    queued_at        timestamptz,
    first_opened_at  timestamptz,
    decided_at       timestamptz,
    decided_by       uuid REFERENCES users (id),
    issued_at        timestamptz,
    execution_deadline timestamptz,
    night_service    boolean NOT NULL DEFAULT false,
    -- Fixed at issue: the canonical issued document (RFC 8785 JSON), its SHA-256, and the PDF
    -- service copy made from it (served byte for byte).
    issued_document  bytea,
    issued_document_sha256 text CHECK (issued_document_sha256 ~ '^[0-9a-f]{64}$'),
    service_copy     bytea,
    reminder_sent_at timestamptz,
    executed_at      timestamptz,
    executed_by      uuid REFERENCES users (id),
    return_kind      text CHECK (return_kind IN ('inventory', 'not_executed')),
    return_inventory jsonb,
    return_note      text,
    returned_at      timestamptz,
    returned_by      uuid REFERENCES users (id),
    -- Sealing: asked for with the application; ordered, renewed and lifted by a judge. `seal` is
    -- the order with its renewals and unsealing; `sealed` stays true until the order is lifted or
    -- the expiry job records its lapse, and visibility also honours `seal_expires_at` meanwhile.
    sealing_requested boolean NOT NULL DEFAULT false,
    sealed           boolean NOT NULL DEFAULT false,
    seal_expires_at  timestamptz,
    seal             jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agency_id, number)
);
CREATE INDEX warrants_state ON warrants (state, id);
CREATE INDEX warrants_queue ON warrants (urgency, submitted_at) WHERE state = 'pending_judge';
CREATE INDEX warrants_deadline ON warrants (execution_deadline) WHERE state = 'issued';
CREATE INDEX warrants_seal_expiry ON warrants (seal_expires_at) WHERE sealed;
CREATE INDEX warrants_author ON warrants (author_id, id);
CREATE INDEX warrants_court ON warrants (court, submitted_at);
CREATE INDEX warrants_parent ON warrants (parent_id) WHERE parent_id IS NOT NULL;
GRANT SELECT, INSERT, UPDATE ON warrants TO {{agency_role}};

-- Every submitted or returned-for-revision affidavit, byte for byte, with its SHA-256: never
-- changed or removed by the agency role (no UPDATE or DELETE grant), and refused for everyone
-- by the trigger below.
CREATE TABLE affidavit_versions (
    agency_id  uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    warrant_id uuid NOT NULL REFERENCES warrants (id),
    number     integer NOT NULL CHECK (number > 0),
    text       text NOT NULL,
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    reason     text NOT NULL CHECK (reason IN ('submitted', 'returned_for_revision', 'amended')),
    ai_draft   jsonb,
    created_by uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warrant_id, number)
);
GRANT SELECT, INSERT ON affidavit_versions TO {{agency_role}};

CREATE FUNCTION affidavit_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'affidavit versions are immutable: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER affidavit_versions_immutable BEFORE UPDATE OR DELETE ON affidavit_versions
    FOR EACH ROW EXECUTE FUNCTION affidavit_versions_immutable();

-- Deadline reminders for the author, one per warrant and deadline (replicas running the job
-- together insert it once); a notifier delivers them.
CREATE TABLE warrant_reminders (
    agency_id    uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id           uuid PRIMARY KEY,
    warrant_id   uuid NOT NULL REFERENCES warrants (id),
    recipient_id uuid NOT NULL REFERENCES users (id),
    deadline     timestamptz NOT NULL,
    remind_at    timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (warrant_id, deadline)
);
GRANT SELECT, INSERT, UPDATE ON warrant_reminders TO {{agency_role}};
