-- Operators: lockout counts the failed logins of the last window (the times of at most the threshold's
-- worth, newest kept), so any five within fifteen minutes lock and five spread wider never do.
ALTER TABLE control.operators
    DROP COLUMN failed_logins,
    DROP COLUMN failed_window_start,
    ADD COLUMN recent_failures timestamptz[] NOT NULL DEFAULT '{}';
