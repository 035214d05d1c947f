//! writ-warrant-workflow owns the warrant state machine: drafting, reviews, the judge queue,
//! issue and rejection, execution windows and expiry, sealing, returns and remote-oath sessions.
//! Every transition is one tenant transaction that records its audit event; it never speaks HTTP.
