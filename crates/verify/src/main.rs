//! `writ-verify`: offline verification of Writ audit exports, proofs and e-signature records, for
//! auditors.
//!
//! All the format rules live in `writ-audit-chain`; this binary only reads files, shows
//! progress and prints results. It never uses the network. Exit status: 0 when everything
//! verifies, 1 when anything fails or cannot be read, 2 for usage errors.

mod bundle;
mod certificate;
mod checks;
mod input;
mod offboarding;
mod proofs;
mod signature;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "writ-verify",
    version,
    about = "Verify Writ audit exports, inclusion proofs, consistency proofs and e-signature records, offline."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify an export bundle: every entry, the hash chain, the Merkle root, the signed
    /// checkpoint and the signed certificate.
    Bundle {
        /// Bundle directory, or the bundle as .tar.gz / .tar.
        bundle: PathBuf,
        /// The agency's audit public key (PEM), obtained out of band. Repeat for several
        /// key versions.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
    },
    /// Verify that one entry is in the log, against a signed checkpoint.
    Inclusion {
        /// The entry as JSON (a file), or its hash as sha256:<hex>.
        #[arg(long)]
        entry: String,
        /// Inclusion proof JSON (GET /v1/audit/proofs/inclusion).
        #[arg(long)]
        proof: PathBuf,
        /// Signed checkpoint note.
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// Key name of the checkpoint signatures (default: the checkpoint's origin).
        #[arg(long)]
        key_name: Option<String>,
    },
    /// Verify that an older checkpoint's tree is a prefix of a newer one's.
    Consistency {
        /// Consistency proof JSON (GET /v1/audit/proofs/consistency).
        #[arg(long)]
        proof: PathBuf,
        #[arg(long)]
        old_checkpoint: PathBuf,
        #[arg(long)]
        new_checkpoint: PathBuf,
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// Key name of the checkpoint signatures (default: the checkpoints' origin).
        #[arg(long)]
        key_name: Option<String>,
    },
    /// Verify an e-signature record: its form, the intent statement's hash, that the document
    /// is the exact signed bytes, and the agency's signature.
    Signature {
        /// The signature record JSON (`{"record": …, "signature": …}`).
        record: PathBuf,
        /// The document file, as downloaded from Writ.
        #[arg(long)]
        document: PathBuf,
        /// The agency's signing public key (PEM), obtained out of band. Repeat for several
        /// key versions.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// A trusted time-stamping authority certificate (PEM: the TSA's own or its CA's) to
        /// check the record's RFC 3161 timestamp with. Repeat for several. Without it a
        /// timestamp is reported, with a warning, but not trusted.
        #[arg(long = "tsa-cert")]
        tsa_certs: Vec<PathBuf>,
    },
    /// Verify a warrant's evidence certificate (GET /v1/warrants/{id}/certificate): its
    /// signature, the checkpoint, every audit entry's inclusion proof, steps, signature records,
    /// the sworn affidavit and the execution window; with --document, that files are listed
    /// documents.
    Certificate {
        /// The evidence certificate JSON (`{"certificate": …, "signature": …}`).
        certificate: PathBuf,
        /// The agency's signing public key (PEM), obtained out of band. Repeat for several
        /// key versions.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// A document file to check against the listed documents (SHA-256 and size). Repeat
        /// for several.
        #[arg(long = "document")]
        documents: Vec<PathBuf>,
        /// A trusted time-stamping authority certificate (PEM) to check the signature records'
        /// RFC 3161 timestamps with. Repeat for several. Without it timestamps are reported,
        /// with a warning, but not trusted.
        #[arg(long = "tsa-cert")]
        tsa_certs: Vec<PathBuf>,
    },
    /// Verify an agency's certificate of offboarding (its signature and form) and, with
    /// --bundle, that the final export handed over is the certified one.
    Offboarding {
        /// The certificate JSON (`{"certificate": …, "signature": …}`).
        certificate: PathBuf,
        /// The agency's signing public key (PEM), obtained out of band. Repeat for several
        /// key versions.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
        /// The final export bundle (`.tar.gz`) to check against the certificate.
        #[arg(long)]
        bundle: Option<PathBuf>,
    },
}

/// What a command prints, and whether everything verified.
pub struct Outcome {
    pub text: String,
    pub verified: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Bundle {
            bundle,
            public_keys,
        } => bundle::run(&bundle, &public_keys),
        Command::Inclusion {
            entry,
            proof,
            checkpoint,
            public_keys,
            key_name,
        } => proofs::inclusion(
            &entry,
            &proof,
            &checkpoint,
            &public_keys,
            key_name.as_deref(),
        ),
        Command::Consistency {
            proof,
            old_checkpoint,
            new_checkpoint,
            public_keys,
            key_name,
        } => proofs::consistency(
            &proof,
            &old_checkpoint,
            &new_checkpoint,
            &public_keys,
            key_name.as_deref(),
        ),
        Command::Signature {
            record,
            document,
            public_keys,
            tsa_certs,
        } => signature::run(&record, &document, &public_keys, &tsa_certs),
        Command::Certificate {
            certificate,
            public_keys,
            documents,
            tsa_certs,
        } => certificate::run(&certificate, &public_keys, &documents, &tsa_certs),
        Command::Offboarding {
            certificate,
            public_keys,
            bundle,
        } => offboarding::run(&certificate, &public_keys, bundle.as_deref()),
    };
    // A closed stdout (e.g. piped into `head`) must not turn into a panic.
    let _ = std::io::stdout().write_all(outcome.text.as_bytes());
    let _ = std::io::stdout().flush();
    if outcome.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
