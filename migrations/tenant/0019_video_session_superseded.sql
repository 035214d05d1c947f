-- A session of an earlier review (another judge's, or one from before the warrant was queued
-- again) is ended when the warrant's judge opens a new one, so it neither blocks the new oath nor
-- lets a judge who no longer holds the warrant administer it.
ALTER TABLE video_sessions DROP CONSTRAINT video_sessions_end_reason_check;
ALTER TABLE video_sessions ADD CONSTRAINT video_sessions_end_reason_check
    CHECK (end_reason IN ('ended', 'no_connection', 'idle', 'superseded'));
