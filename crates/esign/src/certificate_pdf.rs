//! The evidence certificate as a PDF: a readable certificate of completion for a court, the
//! defense or an auditor — the warrant, its documents and hashes, affidavit versions, every
//! step with who and when, the oaths, every signature with its authentication, the execution
//! window against the execution time, the return and the audit checkpoint — with the
//! certificate's SHA-256 and signing key on every page, and the signed JSON embedded as
//! `evidence-certificate.json`. The printed text proves nothing by itself: the embedded JSON
//! is what `writ-verify certificate` checks. Pure: no database, no clock.

use serde_json::Value;
use writ_audit_chain::SignedNote;
use writ_audit_chain::evidence::{EvidenceCertificate, SignedEvidenceCertificate};
use writ_audit_chain::signature_record::SignatureEnvelope;
use writ_audit_chain::timestamp::inspect_token;
use writ_warrant_workflow::pdf::{self, Attachment, Text};

/// Name of the embedded signed certificate.
pub const EMBEDDED_NAME: &str = "evidence-certificate.json";

/// The certificate's PDF (deterministic: the same certificate gives the same bytes).
pub fn render(signed: &SignedEvidenceCertificate) -> Vec<u8> {
    let cert = &signed.certificate;
    let json = signed.to_json();
    let sha256 = signed
        .sha256()
        .map(|h| h.to_hex())
        .unwrap_or_else(|_| "(not computable)".to_owned());
    let mut t = Text::new();
    t.title("Evidence certificate");
    t.paragraph(&format!(
        "Certificate of completion of warrant {}: every document, step, oath and signature, as \
         recorded in the agency's audit log.",
        cert.warrant.number
    ));
    t.blank();
    t.fact("Certificate", &cert.certificate_id);
    t.fact("Made", &cert.issued_at);
    t.fact("Agency", &cert.agency_id);
    t.fact("Certificate SHA-256", &sha256);
    t.fact(
        "Signed by",
        &format!(
            "agency key {} (version {}), {}",
            signed.signature.key_id, signed.signature.key_version, signed.signature.algorithm
        ),
    );
    warrant(&mut t, cert);
    documents(&mut t, cert);
    steps(&mut t, cert);
    oaths(&mut t, cert);
    signatures(&mut t, cert);
    execution(&mut t, cert);
    audit(&mut t, cert);
    t.blank();
    t.heading("Verifying this certificate");
    t.paragraph(&format!(
        "This PDF is a readable rendering. The signed certificate is embedded in it as \
         {EMBEDDED_NAME}; its SHA-256 (of its RFC 8785 canonical JSON) is printed on every page. \
         Check it offline with the agency's public key: writ-verify certificate {EMBEDDED_NAME} \
         --public-key agency.pem [--document FILE ...]. docs/EVIDENCE-CERTIFICATE.md describes \
         the checks and how to do them by hand."
    ));
    let number = cert.warrant.number.clone();
    let key_id = signed.signature.key_id;
    let footer = move |page: usize, pages: usize| {
        format!("{number} - certificate SHA-256 {sha256} - key {key_id} - page {page}/{pages}")
    };
    pdf::render(
        t.lines(),
        footer,
        Some(Attachment {
            name: EMBEDDED_NAME,
            mime_type: "application/json",
            bytes: json.as_bytes(),
        }),
    )
}

fn warrant(t: &mut Text, cert: &EvidenceCertificate) {
    let w = &cert.warrant;
    t.blank();
    t.heading("Warrant");
    t.fact("Number", &w.number);
    t.fact("Id", &w.id);
    t.fact("Court", &format!("{} (time zone {})", w.court, w.time_zone));
    t.fact("Type", &format!("{} ({})", w.type_name, w.type_key));
    t.fact("State", &w.state);
    t.fact("Affiant", &w.author_id);
    if let Some(parent) = &w.parent_warrant_id {
        t.fact("Parent warrant", parent);
    }
    if let Some(sha) = &w.issued_document_sha256 {
        t.fact("Issued document SHA-256", sha);
    }
    if let Some(sha) = &w.sworn_affidavit_sha256 {
        let version = w
            .sworn_affidavit_version
            .map(|v| format!("version {v}, "))
            .unwrap_or_default();
        t.fact("Sworn affidavit", &format!("{version}SHA-256 {sha}"));
    }
}

fn documents(t: &mut Text, cert: &EvidenceCertificate) {
    t.blank();
    t.heading(&format!("Documents ({})", cert.documents.len()));
    for d in &cert.documents {
        t.paragraph(&format!(
            "{}: {} ({}, {} bytes, classification {})",
            d.kind,
            d.filename.as_deref().unwrap_or("(no file name)"),
            d.content_type,
            d.size,
            d.classification
        ));
        t.paragraph(&format!("    SHA-256 {}", d.sha256));
        t.paragraph(&format!(
            "    id {}, uploaded {} by {}",
            d.id, d.uploaded_at, d.uploaded_by
        ));
        if let Some(at) = &d.erased_at {
            t.paragraph(&format!(
                "    crypto-erased {at}: the hash and size are the record of what was destroyed"
            ));
        }
    }
    if !cert.affidavit_versions.is_empty() {
        t.blank();
        t.heading(&format!(
            "Affidavit versions ({})",
            cert.affidavit_versions.len()
        ));
        for v in &cert.affidavit_versions {
            t.paragraph(&format!(
                "Version {} ({}), {} by {}",
                v.number, v.reason, v.created_at, v.created_by
            ));
            t.paragraph(&format!("    SHA-256 {}", v.sha256));
        }
    }
}

/// What a step's audit action means, for a reader who does not know the codes.
fn step_words(action: &str) -> &str {
    match action {
        "warrant.created" => "Drafted",
        "warrant.submitted" => "Submitted for review",
        "warrant.reviewed" => "Approved by the supervisor",
        "warrant.queued" => "Approved by the prosecutor; queued for a judge",
        "warrant.returned_for_revision" => "Returned for revision",
        "warrant.claimed" => "Taken up by the judge",
        "warrant.approved" => "Issued by the judge",
        "warrant.rejected" => "Rejected by the judge",
        "warrant.withdrawn" => "Withdrawn",
        "warrant.executed" => "Executed",
        "warrant.returned" => "Return filed",
        "warrant.expired" => "Expired unexecuted",
        "warrant.sealed" => "Sealed",
        "warrant.seal_renewed" => "Seal renewed",
        "warrant.unsealed" => "Unsealed",
        "warrant.seal_lapsed" => "Seal lapsed",
        "warrant.amendment.entered" => "Amendment entered",
        "warrant.amendment.sworn" => "Amendment sworn",
        "warrant.amendment.withdrawn" => "Amendment withdrawn",
        other => other,
    }
}

fn steps(t: &mut Text, cert: &EvidenceCertificate) {
    t.blank();
    t.heading(&format!("Steps ({})", cert.steps.len()));
    for s in &cert.steps {
        t.paragraph(&format!(
            "{}  {} ({})",
            s.at,
            step_words(&s.action),
            s.action
        ));
        let who = match (&s.by, &s.name) {
            (Some(user), Some(name)) => format!("by {name}, {}, user {user}", s.role),
            (Some(user), None) => format!("by user {user} ({})", s.role),
            (None, _) => format!("by the system ({})", s.role),
        };
        let entry = cert
            .audit
            .entries
            .iter()
            .find(|p| p.entry.seq == s.audit_seq)
            .map(|p| format!(", entry {}", p.entry.hash))
            .unwrap_or_default();
        t.paragraph(&format!("    {who}; audit seq {}{entry}", s.audit_seq));
        if let Some(reason) = &s.reason {
            t.paragraph(&format!("    reason: {reason}"));
        }
    }
}

/// A member of an oath record, found under any of the names it has had.
fn member<'a>(record: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(record, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        other => other.to_string(),
    }
}

fn oaths(t: &mut Text, cert: &EvidenceCertificate) {
    if cert.oaths.is_empty() {
        return;
    }
    t.blank();
    t.heading(&format!("Oaths ({})", cert.oaths.len()));
    for o in &cert.oaths {
        let r = &o.record;
        t.paragraph(&format!("Remote session {}", o.session_id));
        let facts: [(&str, &[&str]); 11] = [
            ("administered", &["oath", "administeredAt"]),
            ("judge", &["judgeId"]),
            ("affiant", &["affiantId"]),
            ("affiant identity", &["oath", "identityMethod"]),
            ("identity note", &["oath", "identityNote"]),
            ("judge location", &["oath", "judgeLocation"]),
            ("judge in jurisdiction", &["oath", "judgeInJurisdiction"]),
            ("oath", &["oath", "oathText"]),
            ("affidavit sworn to", &["oath", "affidavitSha256"]),
            ("recording SHA-256", &["recording", "sha256"]),
            ("transcript SHA-256", &["transcript", "sha256"]),
        ];
        for (label, path) in facts {
            if let Some(value) = member(r, path) {
                t.paragraph(&format!("    {label}: {}", shown(value)));
            }
        }
    }
}

/// The RFC 3161 timestamp of a signature record, when the envelope carries one: the time and
/// TSA its token states (whether that TSA is trusted is for `writ-verify --tsa-cert`).
fn timestamp_line(envelope: &SignatureEnvelope) -> Option<String> {
    envelope.timestamp.as_ref()?;
    let said = envelope
        .timestamp_token()
        .and_then(|token| Ok(inspect_token(&token, &envelope.timestamp_digest()?)?));
    Some(match said {
        Ok(info) => format!(
            "    RFC 3161 timestamp: {} by {} (serial {})",
            info.gen_time, info.tsa, info.serial
        ),
        Err(e) => format!("    RFC 3161 timestamp attached, but unreadable: {e}"),
    })
}

fn signatures(t: &mut Text, cert: &EvidenceCertificate) {
    t.blank();
    t.heading(&format!("Signatures ({})", cert.signatures.len()));
    for envelope in &cert.signatures {
        let r = &envelope.record;
        let a = &r.authentication;
        let badge = match r.signer.badge_or_judicial_id.as_str() {
            "" => "no badge or judicial id on file",
            badge => badge,
        };
        t.paragraph(&format!(
            "{} ({}, {badge}), user {}",
            r.signer.name, r.signer.role, r.signer.user_id
        ));
        t.paragraph(&format!("    record {}", r.record_id));
        t.paragraph(&format!(
            "    signed {} from {} ({})",
            r.signed_at, r.source_ip, r.user_agent
        ));
        t.paragraph(&format!(
            "    authentication {} ({}), authenticated {}, stepped up {}",
            a.methods.join(" + "),
            a.strength,
            a.auth_time,
            a.stepped_up_at
        ));
        t.paragraph(&format!(
            "    document {} ({} bytes)",
            r.document.id, r.document.size
        ));
        t.paragraph(&format!("    SHA-256 {}", r.document.sha256.to_hex()));
        t.paragraph(&format!("    intent: \"{}\"", r.intent.text));
        if let Some(oath) = &r.oath_reference {
            t.paragraph(&format!("    sworn under oath {oath}"));
        }
        match &r.audit {
            Some(audit) => t.paragraph(&format!(
                "    audit seq {}, entry {}",
                audit.seq, audit.entry_hash
            )),
            None => t.paragraph("    no audit reference"),
        }
        if let Some(line) = timestamp_line(envelope) {
            t.paragraph(&line);
        }
        t.paragraph(&format!(
            "    agency signature: key {} (version {})",
            envelope.signature.key_id, envelope.signature.key_version
        ));
    }
}

fn execution(t: &mut Text, cert: &EvidenceCertificate) {
    t.blank();
    t.heading("Execution");
    let Some(e) = &cert.execution else {
        t.paragraph("Not issued: no execution window.");
        return execution_return(t, cert);
    };
    t.fact("Issued", &e.issued_at);
    t.fact(
        "Execute before",
        e.deadline
            .as_deref()
            .unwrap_or("no deadline for this warrant type"),
    );
    let hours = match (&e.daytime, e.night_service) {
        (Some(d), true) => format!("any hour (night service authorized; daytime is {d})"),
        (Some(d), false) => format!("{d} in the court's time only"),
        (None, _) => "any hour".to_owned(),
    };
    t.fact("Execution hours", &hours);
    match (&e.executed_at, e.within_deadline) {
        (Some(at), Some(true)) => t.fact("Executed", &format!("{at}, within the deadline")),
        (Some(at), Some(false)) => t.fact("Executed", &format!("{at}, AFTER the deadline")),
        (Some(at), None) => t.fact("Executed", at),
        (None, _) => t.fact("Executed", "not executed"),
    }
    execution_return(t, cert);
}

fn execution_return(t: &mut Text, cert: &EvidenceCertificate) {
    let Some(r) = &cert.return_filed else {
        return;
    };
    t.blank();
    t.heading("Return");
    let kind = match r.kind.as_str() {
        "inventory" => "inventory of what was seized",
        "not_executed" => "not executed",
        other => other,
    };
    t.fact("Kind", kind);
    t.fact("Filed", &format!("{} by {}", r.returned_at, r.returned_by));
    if let Some(items) = &r.inventory {
        t.paragraph(&format!("Inventory ({} items):", items.len()));
        for item in items {
            t.paragraph(&format!("  - {item}"));
        }
    }
    if let Some(note) = &r.note {
        t.fact("Note", note);
    }
}

fn audit(t: &mut Text, cert: &EvidenceCertificate) {
    let a = &cert.audit;
    t.blank();
    t.heading("Audit checkpoint");
    match SignedNote::parse(&a.checkpoint).map(|n| n.checkpoint()) {
        Ok(Ok(cp)) => {
            t.fact("Log", &cp.origin);
            t.fact("Tree size", &cp.size.to_string());
            t.fact("Root hash", &cp.root.to_base64());
            t.fact("Signed", &cp.time);
        }
        _ => t.paragraph(&format!(
            "The checkpoint note cannot be read (tree size {} stated).",
            a.tree_size
        )),
    }
    t.paragraph(&format!(
        "{} audit entries about this warrant, each with an inclusion proof in that tree:",
        a.entries.len()
    ));
    for p in &a.entries {
        let e = &p.entry;
        let who = e.actor.user_id.as_deref().unwrap_or("system");
        t.paragraph(&format!("seq {}  {}  {}", e.seq, e.timestamp, e.action));
        t.paragraph(&format!("    by {who} ({})", e.actor.role));
        t.paragraph(&format!("    {}", e.hash));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use writ_audit_chain::evidence::sample::sample_evidence;

    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// The embedded file's bytes, read straight from the PDF's only embedded-file stream.
    fn embedded(pdf: &[u8]) -> &[u8] {
        let at = find(pdf, b"/Type /EmbeddedFile").expect("an embedded file");
        let start = at + find(&pdf[at..], b"stream\n").expect("its stream") + 7;
        let end = start + find(&pdf[start..], b"\nendstream").expect("its end");
        &pdf[start..end]
    }

    fn tool(name: &str) -> bool {
        Command::new(name).arg("-v").output().is_ok()
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().expect("run poppler tool");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_pdf_is_deterministic_and_embeds_the_signed_json() {
        let signed = sample_evidence().signed;
        let pdf = render(&signed);
        assert_eq!(pdf, render(&signed));
        assert!(pdf.starts_with(b"%PDF-1.7"));
        assert_eq!(embedded(&pdf), signed.to_json().as_bytes());
        let parsed = SignedEvidenceCertificate::from_json(embedded(&pdf)).expect("parses");
        assert_eq!(parsed, signed);
        let text = String::from_utf8_lossy(&pdf);
        let sha = signed.sha256().expect("hash").to_hex();
        let pages = text.matches("/Type /Page ").count();
        assert!(pages > 1, "{pages} pages");
        assert_eq!(
            text.matches(&sha).count(),
            pages + 1,
            "on every page and the first"
        );
        // Outside Latin-1 becomes '?', the embedded JSON keeps it.
        assert!(text.contains("Hon. Zofia ?ukasiewicz"));
        assert!(text.contains("Xiaomi ?? Redmi"));
    }

    #[test]
    fn a_signer_without_a_badge_on_file_is_said_so() {
        let mut signed = sample_evidence().signed;
        let signer = signed.certificate.signatures[0].record.signer.clone();
        // Parentheses are escaped in the PDF's strings.
        let with_badge = format!("\\({}, {}\\),", signer.role, signer.badge_or_judicial_id);
        assert!(String::from_utf8_lossy(&render(&signed)).contains(&with_badge));
        signed.certificate.signatures[0]
            .record
            .signer
            .badge_or_judicial_id
            .clear();
        let without = format!("\\({}, no badge or judicial id on file\\),", signer.role);
        let text = String::from_utf8_lossy(&render(&signed)).into_owned();
        assert!(text.contains(&without), "{without}");
        assert!(!text.contains(&format!("\\({}, \\),", signer.role)));
    }

    #[test]
    fn a_timestamped_signature_shows_the_time_its_token_states() {
        let tsa = writ_fake_tsa::TsaSigner::new().expect("tsa");
        let mut signed = sample_evidence().signed;
        let envelope = &mut signed.certificate.signatures[1];
        let digest = envelope.timestamp_digest().expect("digest");
        envelope.set_timestamp_token(&tsa.token(&digest, None).expect("token"));
        let info =
            inspect_token(&envelope.timestamp_token().expect("token"), &digest).expect("intact");
        let pdf = render(&signed);
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            text.contains(&format!("RFC 3161 timestamp: {} by", info.gen_time)),
            "genTime {}",
            info.gen_time
        );

        signed.certificate.signatures[1].timestamp =
            Some(writ_audit_chain::signature_record::RecordTimestamp {
                token: "MAA=".into(),
            });
        let text = String::from_utf8_lossy(&render(&signed)).into_owned();
        assert!(text.contains("RFC 3161 timestamp attached, but unreadable"));
    }

    #[test]
    fn the_pdf_renders_and_carries_the_hashes_of_the_json() {
        // Rendering needs poppler-utils, which `make test` expects (README; `.ci/run` installs it).
        assert!(
            tool("pdftoppm") && tool("pdftotext") && tool("pdfdetach"),
            "poppler-utils (pdftoppm, pdftotext, pdfdetach) is needed to check the PDF renders"
        );
        let signed = sample_evidence().signed;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("certificate.pdf");
        std::fs::write(&path, render(&signed)).expect("write pdf");
        let pages = String::from_utf8_lossy(&render(&signed))
            .matches("/Type /Page ")
            .count();

        run(Command::new("pdftoppm")
            .args(["-png", "-r", "50"])
            .arg(&path)
            .arg(dir.path().join("page")));
        let pngs: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
            .collect();
        assert_eq!(pngs.len(), pages);
        for png in &pngs {
            let bytes = std::fs::read(png.path()).expect("read png");
            assert!(bytes.starts_with(b"\x89PNG"), "{:?}", png.path());
        }

        run(Command::new("pdftotext")
            .arg(&path)
            .arg(dir.path().join("text.txt")));
        let text = std::fs::read_to_string(dir.path().join("text.txt")).expect("text");
        let c = &signed.certificate;
        for d in &c.documents {
            assert!(text.contains(&d.sha256), "document {} hash", d.id);
        }
        for e in &c.signatures {
            assert!(text.contains(&e.record.record_id), "record id");
            assert!(text.contains(&e.record.document.sha256.to_hex()));
        }
        for p in &c.audit.entries {
            assert!(
                text.contains(&p.entry.hash.to_string()),
                "seq {}",
                p.entry.seq
            );
        }
        assert!(text.contains("Evidence certificate"));
        assert!(text.contains(&signed.sha256().expect("hash").to_hex()));

        let saved = dir.path().join("saved.json");
        run(Command::new("pdfdetach")
            .args(["-save", "1", "-o"])
            .arg(&saved)
            .arg(&path));
        assert_eq!(
            std::fs::read(&saved).expect("detached"),
            signed.to_json().into_bytes()
        );
        let list = Command::new("pdfdetach")
            .arg("-list")
            .arg(&path)
            .output()
            .expect("pdfdetach -list");
        assert!(String::from_utf8_lossy(&list.stdout).contains(EMBEDDED_NAME));
        assert!(Path::new(&saved).exists());
    }
}
