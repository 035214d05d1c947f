//! writ-documents owns the encrypted document store: per-document data keys wrapped by the agency
//! key, chunked streaming encryption, classification, retention, legal hold and crypto-erase with
//! deletion certificates. Plaintext never touches the database or the logs.
