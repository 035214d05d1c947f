//! writ-esign owns electronic signatures: signature requests, signing with step-up, signature
//! records bound to the exact document bytes and the audit chain, and evidence certificates.
