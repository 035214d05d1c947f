-- A tracking-device warrant's authorised use period, fixed at issue (FRCrP 41(e)(2)(C): at most
-- 45 days from issue; the court's rules in the warrant type). NULL for every other type.
ALTER TABLE warrants ADD COLUMN tracking_use_ends_at timestamptz;
