-- A provider resending a delivery Writ already took (its answer was lost) is told it was taken
-- (200, `duplicate`) rather than refused like a forgery: the same event id with the same body. The
-- body's SHA-256 is what tells a resend from a different delivery reusing the id (still refused).
ALTER TABLE video_webhook_deliveries ADD COLUMN body_sha256 text
    CHECK (body_sha256 IS NULL OR body_sha256 ~ '^[0-9a-f]{64}$');
