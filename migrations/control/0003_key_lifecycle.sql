-- Key lifecycle: when a version was disabled (revocation) and after when its material is destroyed
-- (crypto-shredding at offboarding). For the local provider the destruction is erasing `material`.
ALTER TABLE control.agency_keys
    ADD COLUMN disabled_at    timestamptz,
    ADD COLUMN deletion_after timestamptz;
