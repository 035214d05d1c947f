-- The terms of issue a judge signs the warrant on (night service, a tracking device's days of
-- use), as the request for that signature named them: the document made for signing carries
-- them, and signing makes it again from the warrant and these terms to check it is still current.
ALTER TABLE signature_requests ADD COLUMN terms jsonb;
