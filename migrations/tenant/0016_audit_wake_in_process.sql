-- Sequencer wake-ups move out of the trigger: a transaction that appends audit events either
-- wakes its own process's sequencer after it commits, or sends the same notification from the
-- statement that appends (writ_audit_log::record). A trigger notified on every audited write, and
-- PostgreSQL serializes the commits of notifying transactions cluster-wide.
DROP TRIGGER audit_pending_notify ON audit_pending;
DROP FUNCTION audit_notify_pending();
