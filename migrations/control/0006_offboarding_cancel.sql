-- An offboarding can be called off within its waiting period (docs/OFFBOARDING.md): from the moment
-- this is set no step of it runs any more, and the call-off resumes until the agency is active.
ALTER TABLE control.offboardings ADD COLUMN cancel_requested_at timestamptz;
