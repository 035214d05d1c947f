-- Remote oath (DESIGN §4; docs/VIDEO-OATH.md): video sessions and their participants, the media
-- provider's webhook deliveries (replays are refused by their id), the oath record, sworn
-- amendments ("four corners"), and on the warrant the sworn affidavit version it was issued on and
-- the flag of an oath session that ended without a recording. The session rules live in
-- writ-warrant-workflow (`video`); these tables only hold what happened.

ALTER TABLE warrants
    -- The affidavit version (and its SHA-256) the judge issued on: the last one sworn.
    ADD COLUMN sworn_affidavit_version integer CHECK (sworn_affidavit_version > 0),
    ADD COLUMN sworn_affidavit_sha256 text CHECK (sworn_affidavit_sha256 ~ '^[0-9a-f]{64}$'),
    -- An oath session of this warrant ended without the provider delivering its recording.
    ADD COLUMN oath_recording_missing boolean NOT NULL DEFAULT false;

CREATE TABLE video_sessions (
    agency_id        uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id               uuid PRIMARY KEY,
    warrant_id       uuid NOT NULL REFERENCES warrants (id),
    -- The provider's room: `<agency id>.<session id>`, so an authenticated webhook names both.
    room             text NOT NULL UNIQUE,
    state            text NOT NULL DEFAULT 'initiated' CHECK (state IN ('initiated', 'connected',
                         'disconnected', 'terminated', 'timed_out')),
    judge_id         uuid NOT NULL REFERENCES users (id),
    affiant_id       uuid NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL,
    connected_at     timestamptz,
    -- Provider events, joins and leaves, the oath and amendments: the idle timeout counts from here.
    last_activity_at timestamptz NOT NULL,
    ended_at         timestamptz,
    end_reason       text CHECK (end_reason IN ('ended', 'no_connection', 'idle')),
    -- The recording is the court's record (FRCrP 4.1; Minn. R. Crim. P. 36.04): Writ keeps the
    -- provider's reference and the SHA-256 the provider reported, in the court's custody.
    recording_reference    text,
    recording_sha256       text CHECK (recording_sha256 ~ '^[0-9a-f]{64}$'),
    recording_custody      text CHECK (recording_custody = 'court'),
    recording_delivered_at timestamptz,
    transcript_sha256      text CHECK (transcript_sha256 ~ '^[0-9a-f]{64}$'),
    transcript_reference   text,
    transcript_certified_by uuid REFERENCES users (id),
    transcript_certified_at timestamptz,
    CHECK ((recording_sha256 IS NULL) = (recording_reference IS NULL))
);
-- One open session per warrant.
CREATE UNIQUE INDEX video_sessions_open_per_warrant ON video_sessions (warrant_id)
    WHERE state IN ('initiated', 'connected', 'disconnected');
CREATE INDEX video_sessions_timeouts ON video_sessions (state, last_activity_at)
    WHERE state IN ('initiated', 'connected', 'disconnected');
CREATE INDEX video_sessions_warrant ON video_sessions (warrant_id, created_at);
GRANT SELECT, INSERT, UPDATE ON video_sessions TO {{agency_role}};

-- Presence: the last join and leave of each participant, and how many joins.
CREATE TABLE video_session_participants (
    agency_id  uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    session_id uuid NOT NULL REFERENCES video_sessions (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    role       text NOT NULL CHECK (role IN ('judge', 'affiant')),
    joined_at  timestamptz NOT NULL,
    left_at    timestamptz,
    joins      integer NOT NULL DEFAULT 1 CHECK (joins > 0),
    PRIMARY KEY (session_id, user_id)
);
GRANT SELECT, INSERT, UPDATE ON video_session_participants TO {{agency_role}};

-- Every accepted provider delivery, by its id: a delivery seen before is a replay and refused.
CREATE TABLE video_webhook_deliveries (
    agency_id   uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
    session_id  uuid NOT NULL REFERENCES video_sessions (id),
    event_type  text NOT NULL,
    signed_at   timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (agency_id, event_id)
);
GRANT SELECT, INSERT ON video_webhook_deliveries TO {{agency_role}};

-- The oath as administered, one per session: who confirmed whose identity and how, where the
-- judge was, the words, the time, and the affidavit version sworn to. Never changed.
CREATE TABLE oath_records (
    agency_id        uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id               uuid PRIMARY KEY,
    session_id       uuid NOT NULL UNIQUE REFERENCES video_sessions (id),
    warrant_id       uuid NOT NULL REFERENCES warrants (id),
    judge_id         uuid NOT NULL REFERENCES users (id),
    affiant_id       uuid NOT NULL REFERENCES users (id),
    identity_method  text NOT NULL CHECK (identity_method IN ('known_personally',
                         'government_id_on_video', 'agency_credential_on_video',
                         'agency_verified_login', 'other')),
    identity_note    text,
    judge_location   text NOT NULL,
    judge_in_jurisdiction boolean NOT NULL,
    oath_text        text NOT NULL,
    oath_text_sha256 text NOT NULL CHECK (oath_text_sha256 ~ '^[0-9a-f]{64}$'),
    administered_at  timestamptz NOT NULL,
    affidavit_version integer NOT NULL CHECK (affidavit_version > 0),
    affidavit_sha256 text NOT NULL CHECK (affidavit_sha256 ~ '^[0-9a-f]{64}$')
);
CREATE INDEX oath_records_warrant ON oath_records (warrant_id, administered_at);
GRANT SELECT, INSERT ON oath_records TO {{agency_role}};

-- Four corners: facts the judge relies on beyond the affidavit, entered during the session; the
-- affiant swears to them, which keeps the amended affidavit as a new immutable version.
CREATE TABLE warrant_amendments (
    agency_id     uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id            uuid PRIMARY KEY,
    warrant_id    uuid NOT NULL REFERENCES warrants (id),
    session_id    uuid NOT NULL REFERENCES video_sessions (id),
    facts         text NOT NULL,
    facts_sha256  text NOT NULL CHECK (facts_sha256 ~ '^[0-9a-f]{64}$'),
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sworn', 'withdrawn')),
    entered_by    uuid NOT NULL REFERENCES users (id),
    entered_at    timestamptz NOT NULL,
    sworn_by      uuid REFERENCES users (id),
    sworn_at      timestamptz,
    sworn_session_id uuid REFERENCES video_sessions (id),
    affidavit_version integer CHECK (affidavit_version > 0),
    affidavit_sha256  text CHECK (affidavit_sha256 ~ '^[0-9a-f]{64}$'),
    withdrawn_by  uuid REFERENCES users (id),
    withdrawn_at  timestamptz,
    withdrawn_reason text
);
CREATE INDEX warrant_amendments_warrant ON warrant_amendments (warrant_id, entered_at);
GRANT SELECT, INSERT, UPDATE ON warrant_amendments TO {{agency_role}};
