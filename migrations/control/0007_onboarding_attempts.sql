-- An onboarding that adopts existing keys tags them for the new agency's id at its provider before
-- its transaction commits. Each attempt's id is noted here first, in a statement of its own, and
-- removed by the onboarding's own commit: a key tagged for an id still listed belongs to an
-- onboarding that did not complete, and the next attempt takes that id over instead of refusing
-- the key as another agency's.
CREATE TABLE control.onboarding_attempts (
    agency_id  uuid PRIMARY KEY,
    slug       text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
