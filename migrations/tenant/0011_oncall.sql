-- On-call judges and alerts (docs/NOTIFICATIONS.md): contacts of users, rosters per court, the
-- routing hops of each queued warrant, and the notification outbox. The rules (who is on call,
-- when to escalate, what a message may say) live in writ-warrant-workflow and writ-notify.

-- Where alerts go. A phone number is E.164 (+ and up to 15 digits), as SMS providers take it.
ALTER TABLE users
    ADD COLUMN email text CHECK (email IS NULL OR (length(email) <= 254 AND email ~ '^[^@\s]+@[^@\s]+$')),
    ADD COLUMN phone text CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$');

-- One roster per court (the court key of the warrant-types policy): its presiding judge (the
-- last resort of every escalation) and its shifts.
CREATE TABLE court_rosters (
    agency_id          uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    court              text NOT NULL,
    presiding_judge_id uuid NOT NULL REFERENCES users (id),
    -- The court's time zone when the roster was set: the shifts' instants were computed in it.
    time_zone          text NOT NULL,
    version            integer NOT NULL DEFAULT 1 CHECK (version > 0),
    updated_by         uuid REFERENCES users (id),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, court)
);
GRANT SELECT, INSERT, UPDATE ON court_rosters TO {{agency_role}};

-- A shift as given (local wall-clock times in the court's zone) and as resolved (instants): the
-- local times are what people wrote and see; the instants are what on-call resolution compares.
CREATE TABLE roster_shifts (
    agency_id    uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id           uuid PRIMARY KEY,
    court        text NOT NULL,
    position     integer NOT NULL CHECK (position >= 0),
    judge_id     uuid NOT NULL REFERENCES users (id),
    role         text NOT NULL CHECK (role IN ('primary', 'backup')),
    starts_local timestamp NOT NULL,
    ends_local   timestamp NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    FOREIGN KEY (agency_id, court) REFERENCES court_rosters (agency_id, court) ON DELETE CASCADE
);
CREATE INDEX roster_shifts_on_call ON roster_shifts (court, role, starts_at, ends_at);
-- A PUT replaces the shifts: the agency role deletes the old ones in the same transaction.
GRANT SELECT, INSERT, DELETE ON roster_shifts TO {{agency_role}};

-- The alert outbox: written in the transaction of the event that causes the alert, delivered by
-- the servers' delivery loop (FOR UPDATE SKIP LOCKED), never deleted: a failure stays visible.
-- It keeps the facts a message is rendered from (number, urgency, deadline), never a text.
CREATE TABLE notifications (
    agency_id       uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('warrant.offered', 'warrant.escalated', 'warrant.deadline_reminder')),
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'voice')),
    recipient_id    uuid NOT NULL REFERENCES users (id),
    warrant_id      uuid REFERENCES warrants (id),
    warrant_number  text,
    urgency         text CHECK (urgency IN ('routine', 'urgent', 'exigent')),
    due_at          timestamptz,
    reminder_id     uuid REFERENCES warrant_reminders (id),
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    failed_at       timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_state ON notifications (state, id);
CREATE INDEX notifications_warrant ON notifications (warrant_id, id);
GRANT SELECT, INSERT, UPDATE ON notifications TO {{agency_role}};

-- A delivered reminder marks its warrant_reminders row (the outbox the expiry job writes).
CREATE FUNCTION notifications_mark_reminder() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE warrant_reminders SET delivered_at = coalesce(delivered_at, NEW.sent_at)
     WHERE id = NEW.reminder_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER notifications_mark_reminder AFTER UPDATE OF state ON notifications
    FOR EACH ROW WHEN (NEW.state = 'sent' AND NEW.reminder_id IS NOT NULL)
    EXECUTE FUNCTION notifications_mark_reminder();

-- Who was alerted about a queued warrant, hop by hop: 0 the judge on call when it was queued,
-- then the backup and the presiding judge while nobody opens it. One row per hop (replicas
-- running the routing job together write it once).
CREATE TABLE warrant_routing_hops (
    agency_id        uuid NOT NULL DEFAULT current_setting('writ.agency_id')::uuid,
    warrant_id       uuid NOT NULL REFERENCES warrants (id),
    hop              integer NOT NULL CHECK (hop >= 0),
    -- Which step of the chain the judge was reached as.
    level            text NOT NULL CHECK (level IN ('primary', 'backup', 'presiding')),
    judge_id         uuid NOT NULL REFERENCES users (id),
    reason           text NOT NULL,
    at               timestamptz NOT NULL,
    -- The queue entry this chain belongs to: a warrant returned for revision and queued again
    -- starts a new chain.
    queued_at        timestamptz NOT NULL,
    notification_ids uuid[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (warrant_id, queued_at, hop)
);
GRANT SELECT, INSERT ON warrant_routing_hops TO {{agency_role}};
