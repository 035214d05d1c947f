-- An alert that no longer concerns anyone when its turn comes (the warrant was opened, claimed,
-- decided or queued again; a reminded warrant was executed or withdrawn) is not sent: it ends as
-- `cancelled`, with when and why, instead of waking a judge at night for a decided warrant.
ALTER TABLE notifications
    DROP CONSTRAINT notifications_state_check,
    ADD CONSTRAINT notifications_state_check
        CHECK (state IN ('pending', 'sent', 'failed', 'cancelled')),
    ADD COLUMN cancelled_at timestamptz,
    ADD CONSTRAINT notifications_cancelled_check
        CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL));
