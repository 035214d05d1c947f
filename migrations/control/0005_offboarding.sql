-- Offboarding, step by step (docs/OFFBOARDING.md): each step commits on its
-- own, so a run that fails part-way resumes where it stopped instead of leaving a provider's keys
-- scheduled for deletion behind a rolled-back database. Only the owner role reads or writes it.
CREATE TABLE control.offboardings (
    agency_id         uuid PRIMARY KEY REFERENCES control.agencies (id),
    -- `operator:<username>` or `os:<user>` (the command line).
    requested_by      text NOT NULL,
    reason            text NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    -- When the agency's keys, and with them everything they protect, are destroyed.
    deletion_after    timestamptz NOT NULL,
    -- The final signed export: file name, size, SHA-256 and the seqs it covers.
    final_export      jsonb,
    -- The signed certificate of offboarding (writ-agency-offboarding/1).
    certificate       jsonb,
    keys_scheduled_at timestamptz,
    -- Schema and role dropped, stored documents and exports removed.
    completed_at      timestamptz
);
