//! RFC 3161 trusted timestamps: the request a client sends to a time-stamping authority (TSA),
//! the checks on its response, and the offline verification of a timestamp token against the
//! TSA certificates an auditor trusts.
//!
//! A token is a CMS `SignedData` whose content is a `TSTInfo` (the hash it stamps, the TSA's
//! time, serial and policy), signed by a certificate that carries the critical extended key usage
//! `id-kp-timeStamping`. Verification accepts SHA-256 imprints only, signers with ECDSA P-256 or
//! RSA (PKCS #1 v1.5) keys, SHA-256 throughout, and a signer certificate that is trusted itself or
//! directly issued by a trusted CA certificate; no chains longer than that, no revocation checks
//! (an auditor checks offline).
//!
//! Like the rest of this crate: no I/O, no clock (the certificate's validity is compared with
//! the token's own `genTime`), no panics on any input.

use std::fmt;
use std::time::Duration;

use cms::content_info::CmsVersion;
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use der::asn1::{AnyRef, Int, OctetString};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Header, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use sha2::{Digest, Sha256};
use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TspVersion};

const ID_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_AA_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const ID_CE_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const ID_CE_SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const ID_CE_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP_256_R_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ECDSA_WITH_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA_256_WITH_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// Why a timestamp request, response or token is refused. Each variant names what failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TimestampError {
    #[error("malformed {what}: {reason}")]
    Encoding { what: &'static str, reason: String },
    #[error("the TSA refused the request: status {status}{}", .text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Rejected {
        status: String,
        text: Option<String>,
    },
    #[error("the TSA granted the request but sent no timestamp token")]
    NoToken,
    #[error("the token is not a signed timestamp: content type {0}")]
    NotTimestamp(String),
    #[error("the token stamps a hash made with {0}; only SHA-256 is accepted")]
    UnsupportedHash(String),
    #[error("the token stamps another hash: {found}, expected {expected}")]
    ImprintMismatch { expected: String, found: String },
    #[error("the token does not carry the request's nonce")]
    NonceMismatch,
    #[error("the token has {0} signers; a timestamp token has exactly one")]
    SignerCount(usize),
    #[error("the token's signer info has no {0}")]
    MissingAttribute(&'static str),
    #[error("the signed content-type attribute is not id-ct-TSTInfo")]
    ContentTypeAttribute,
    #[error("the signed message digest does not match the TSTInfo: the token was altered")]
    MessageDigestMismatch,
    #[error("the token's signing-certificate attribute does not name the signer's certificate")]
    SigningCertificateMismatch,
    #[error("the token's signer certificate is neither in the token nor among the trusted ones")]
    SignerCertificateNotFound,
    #[error("unsupported {what} algorithm {oid}")]
    UnsupportedAlgorithm { what: &'static str, oid: String },
    #[error("the TSA's signature over the token does not verify: the token was altered")]
    BadSignature,
    #[error("the signer certificate {subject} is not a timestamping certificate: {reason}")]
    NotTimestampingCertificate { subject: String, reason: String },
    #[error("the certificate {subject} was not valid at the token's time {gen_time}")]
    CertificateNotValid { subject: String, gen_time: String },
    #[error(
        "the signer certificate {subject} (issued by {issuer}) is not trusted: it is not one of the trusted TSA certificates nor issued by one"
    )]
    Untrusted { subject: String, issuer: String },
    #[error("not a certificate: {0}")]
    Certificate(String),
}

fn encoding(what: &'static str) -> impl Fn(der::Error) -> TimestampError {
    move |e| TimestampError::Encoding {
        what,
        reason: e.to_string(),
    }
}

/// A TSA certificate an auditor or the server trusts: the TSA's own certificate, or the CA that
/// issued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsaCertificate {
    der: Vec<u8>,
    certificate: Certificate,
}

impl TsaCertificate {
    pub fn from_der(der: &[u8]) -> Result<TsaCertificate, TimestampError> {
        let certificate =
            Certificate::from_der(der).map_err(|e| TimestampError::Certificate(e.to_string()))?;
        Ok(TsaCertificate {
            der: der.to_vec(),
            certificate,
        })
    }

    /// The first certificate of a PEM file.
    pub fn from_pem(pem: &str) -> Result<TsaCertificate, TimestampError> {
        TsaCertificate::all_from_pem(pem)?
            .into_iter()
            .next()
            .ok_or_else(|| TimestampError::Certificate("no certificate in the PEM text".into()))
    }

    /// Every certificate of a PEM file (e.g. a TSA certificate and its CA); at least one.
    pub fn all_from_pem(pem: &str) -> Result<Vec<TsaCertificate>, TimestampError> {
        let certificates = Certificate::load_pem_chain(pem.as_bytes())
            .map_err(|e| TimestampError::Certificate(e.to_string()))?;
        if certificates.is_empty() {
            return Err(TimestampError::Certificate(
                "no certificate in the PEM text".into(),
            ));
        }
        certificates
            .into_iter()
            .map(|certificate| {
                let der = certificate
                    .to_der()
                    .map_err(|e| TimestampError::Certificate(e.to_string()))?;
                Ok(TsaCertificate { der, certificate })
            })
            .collect()
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate's subject, RFC 4514 style.
    pub fn subject(&self) -> String {
        self.certificate.tbs_certificate.subject.to_string()
    }
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampInfo {
    /// The TSA's time, `YYYY-MM-DDTHH:MM:SSZ`, with `.mmm` before the `Z` when the token has a
    /// fraction of a second (truncated to milliseconds).
    pub gen_time: String,
    /// The same time in milliseconds since the Unix epoch, for comparisons.
    pub gen_time_millis: i64,
    /// The token's serial number, `0x` and lowercase hex.
    pub serial: String,
    /// The TSA policy the token was issued under, as a dotted OID.
    pub policy: String,
    /// The subject of the certificate that signed the token.
    pub tsa: String,
}

/// `TSTInfo` as RFC 3161 defines it. Hand-defined rather than `x509_tsp::TstInfo` because
/// `der`'s `GeneralizedTime` refuses the fractional seconds many TSAs write in `genTime`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TstInfo {
    version: TspVersion,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: der::Any,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<Extensions>,
}

/// `IssuerSerial` (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// `ESSCertID` (RFC 2634): the certificate's SHA-1.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// `SigningCertificate` (RFC 2634).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Vec<der::Any>>,
}

/// `ESSCertIDv2` (RFC 5035); the hash algorithm defaults to SHA-256.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// `SigningCertificateV2` (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Vec<der::Any>>,
}

fn u64_to_int(n: u64) -> Result<Int, der::Error> {
    Int::from_der(&n.to_der()?)
}

/// Whether a DER INTEGER holds exactly `n`.
fn int_is(int: &Int, n: u64) -> bool {
    let bytes = int.as_bytes();
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return false;
    }
    let magnitude: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let expected: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    magnitude == expected
}

/// A DER `TimeStampReq` for a SHA-256 `digest`, with `nonce`, asking for the TSA's certificate
/// in the token (`certReq`), so a verifier needs only the CA.
pub fn timestamp_request(digest: &[u8; 32], nonce: u64) -> Vec<u8> {
    let request = (|| -> Result<Vec<u8>, der::Error> {
        TimeStampReq {
            version: TspVersion::V1,
            message_imprint: MessageImprint {
                hash_algorithm: x509_cert::spki::AlgorithmIdentifier {
                    oid: ID_SHA_256,
                    parameters: None,
                },
                hashed_message: OctetString::new(digest.to_vec())?,
            },
            req_policy: None,
            nonce: Some(u64_to_int(nonce)?),
            cert_req: true,
            extensions: None,
        }
        .to_der()
    })();
    // Fixed-size fields only: encoding cannot fail; an empty request would be refused by the TSA.
    request.unwrap_or_default()
}

/// Checks a DER `TimeStampResp` against the request made with `digest` and `nonce`, and returns
/// the DER timestamp token it carries (not yet verified against a trusted TSA: that is
/// [`verify_token`]).
pub fn parse_response(
    der: &[u8],
    digest: &[u8; 32],
    nonce: u64,
) -> Result<Vec<u8>, TimestampError> {
    let response = TimeStampResp::from_der(der).map_err(encoding("timestamp response"))?;
    let info = &response.status;
    // 0 granted, 1 grantedWithMods; anything else carries no usable token.
    if info.status > 1 {
        let mut status = status_name(info.status);
        let failures = failure_names(info.fail_info.as_ref());
        if !failures.is_empty() {
            status = format!("{status} ({})", failures.join(", "));
        }
        return Err(TimestampError::Rejected {
            status,
            text: info.status_string.as_ref().map(|texts| texts.join("; ")),
        });
    }
    let token = response
        .time_stamp_token
        .ok_or(TimestampError::NoToken)?
        .to_der()
        .map_err(encoding("timestamp response"))?;

    let parsed = ParsedToken::parse(&token)?;
    parsed.check_imprint(digest)?;
    match &parsed.tst_info.nonce {
        Some(n) if int_is(n, nonce) => {}
        _ => return Err(TimestampError::NonceMismatch),
    }
    Ok(token)
}

/// `TimeStampResp` (RFC 3161 §2.4.2) with the token kept as its own bytes. Hand-defined rather
/// than `x509_tsp::TimeStampResp`, whose failInfo type holds only the first 16 failure bits: a
/// `systemFailure` (bit 25) rejection would not decode and be reported as garbage.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<der::Any>,
}

/// `PKIStatusInfo` (RFC 3161 §2.4.2).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct PkiStatusInfo {
    status: u32,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<der::asn1::BitString>,
}

fn status_name(status: u32) -> String {
    match status {
        0 => "granted".into(),
        1 => "grantedWithMods".into(),
        2 => "rejection".into(),
        3 => "waiting".into(),
        4 => "revocationWarning".into(),
        5 => "revocationNotification".into(),
        other => other.to_string(),
    }
}

fn failure_names(fail_info: Option<&der::asn1::BitString>) -> Vec<&'static str> {
    const NAMES: [(usize, &str); 8] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
        (17, "addInfoNotAvailable"),
        (25, "systemFailure"),
    ];
    let Some(bits) = fail_info else {
        return Vec::new();
    };
    let set: Vec<bool> = bits.bits().collect();
    NAMES
        .iter()
        .filter(|(bit, _)| set.get(*bit).copied().unwrap_or(false))
        .map(|(_, name)| *name)
        .collect()
}

/// `SignedData` (RFC 5652 §5.1) with its SETs kept loose. Hand-defined rather than
/// `cms::signed_data::SignedData`, which refuses a certificate set holding the same certificate
/// twice, as OpenSSL's TSA writes when the signer certificate is also in its chain file.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct LooseSignedData {
    version: CmsVersion,
    digest_algorithms: der::Any,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<Vec<der::Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<Vec<der::Any>>,
    signer_infos: der::Any,
}

/// A token taken apart, not yet verified.
struct ParsedToken {
    /// The certificates the token carries.
    certificates: Vec<Certificate>,
    signer: SignerInfo,
    /// DER of the signed attributes as a SET OF, the bytes the TSA signed.
    signed_attrs_der: Vec<u8>,
    /// The `TSTInfo` DER, the eContent octets.
    tst_info_der: Vec<u8>,
    tst_info: TstInfo,
}

impl ParsedToken {
    fn parse(token_der: &[u8]) -> Result<ParsedToken, TimestampError> {
        let content_info = ContentInfo::from_der(token_der).map_err(encoding("timestamp token"))?;
        if content_info.content_type != ID_SIGNED_DATA {
            return Err(TimestampError::NotTimestamp(
                content_info.content_type.to_string(),
            ));
        }
        let signed_data: LooseSignedData = content_info
            .content
            .decode_as()
            .map_err(encoding("SignedData"))?;
        let encap = &signed_data.encap_content_info;
        if encap.econtent_type != ID_CT_TST_INFO {
            return Err(TimestampError::NotTimestamp(
                encap.econtent_type.to_string(),
            ));
        }
        let tst_info_der = encap
            .econtent
            .as_ref()
            .ok_or(TimestampError::MissingAttribute("TSTInfo content"))?
            .decode_as::<OctetString>()
            .map_err(encoding("TSTInfo"))?
            .into_bytes();
        let tst_info = TstInfo::from_der(&tst_info_der).map_err(encoding("TSTInfo"))?;

        let fail = encoding("SignedData signer infos");
        if signed_data.signer_infos.tag() != Tag::Set {
            return Err(TimestampError::Encoding {
                what: "SignedData",
                reason: "signerInfos is not a SET".into(),
            });
        }
        let mut reader = SliceReader::new(signed_data.signer_infos.value()).map_err(&fail)?;
        let mut signers = Vec::new();
        while !reader.is_finished() {
            signers.push(AnyRef::decode(&mut reader).map_err(&fail)?);
        }
        let [raw_signer] = signers.as_slice() else {
            return Err(TimestampError::SignerCount(signers.len()));
        };
        let signer: SignerInfo = raw_signer.decode_as().map_err(&fail)?;
        let signed_attrs_der = raw_signed_attributes(raw_signer.value())?;

        // Anything in the set that is not a plain X.509 certificate is of no use here.
        let certificates = signed_data
            .certificates
            .iter()
            .flatten()
            .filter_map(|c| c.decode_as::<Certificate>().ok())
            .collect();
        Ok(ParsedToken {
            certificates,
            signer,
            signed_attrs_der,
            tst_info_der,
            tst_info,
        })
    }

    fn check_imprint(&self, digest: &[u8; 32]) -> Result<(), TimestampError> {
        let imprint = &self.tst_info.message_imprint;
        if imprint.hash_algorithm.oid != ID_SHA_256 {
            return Err(TimestampError::UnsupportedHash(
                imprint.hash_algorithm.oid.to_string(),
            ));
        }
        let found = imprint.hashed_message.as_bytes();
        if found != digest {
            return Err(TimestampError::ImprintMismatch {
                expected: hex::encode(digest),
                found: hex::encode(found),
            });
        }
        Ok(())
    }

    fn attribute(&self, oid: ObjectIdentifier) -> Option<&der::Any> {
        let attrs = self.signer.signed_attrs.as_ref()?;
        let attr = attrs.iter().find(|a| a.oid == oid)?;
        match attr.values.as_slice() {
            [value] => Some(value),
            _ => None,
        }
    }

    /// The signer's certificate: the one the `sid` names, from the token or the trusted ones.
    fn signer_certificate<'a>(
        &'a self,
        trusted: &'a [TsaCertificate],
    ) -> Result<&'a Certificate, TimestampError> {
        let mut candidates = self
            .certificates
            .iter()
            .chain(trusted.iter().map(|t| &t.certificate));
        candidates
            .find(|cert| names_signer(cert, &self.signer.sid))
            .ok_or(TimestampError::SignerCertificateNotFound)
    }
}

fn names_signer(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    let tbs = &cert.tbs_certificate;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer == tbs.issuer && ias.serial_number == tbs.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER)
            .and_then(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|k| k.as_bytes() == ski.0.as_bytes()),
    }
}

/// The signed attributes exactly as they are in the token, re-tagged as a SET OF: the signature
/// is over those bytes (RFC 5652 §5.4), and decoding them into a `SetOfVec` would re-sort them.
fn raw_signed_attributes(signer_info_value: &[u8]) -> Result<Vec<u8>, TimestampError> {
    let fail = encoding("SignerInfo");
    let mut reader = SliceReader::new(signer_info_value).map_err(&fail)?;
    // version, sid, digestAlgorithm, then [0] IMPLICIT signedAttrs.
    for _ in 0..3 {
        AnyRef::decode(&mut reader).map_err(&fail)?;
    }
    let attrs = AnyRef::decode(&mut reader).map_err(&fail)?;
    let is_signed_attrs = attrs.tag()
        == Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        };
    if !is_signed_attrs {
        return Err(TimestampError::MissingAttribute("signed attributes"));
    }
    let mut out = Header::new(Tag::Set, attrs.value().len())
        .and_then(|h| h.to_der())
        .map_err(&fail)?;
    out.extend_from_slice(attrs.value());
    Ok(out)
}

/// Verifies a DER timestamp token: it stamps `digest` (SHA-256), its signed attributes bind the
/// `TSTInfo` and the signer's certificate, the signature verifies with that certificate's key, the
/// certificate is a timestamping certificate valid at the token's time, and it is one of
/// `trusted` or directly issued by one of them.
pub fn verify_token(
    token_der: &[u8],
    digest: &[u8; 32],
    trusted: &[TsaCertificate],
) -> Result<TimestampInfo, TimestampError> {
    check_token(token_der, digest, Some(trusted))
}

/// Every check of [`verify_token`] except trust: the token is intact and signed by the
/// timestamping certificate it carries, but anyone can make such a certificate. What it returns
/// is what the token claims, for display when no TSA certificate is at hand.
pub fn inspect_token(token_der: &[u8], digest: &[u8; 32]) -> Result<TimestampInfo, TimestampError> {
    check_token(token_der, digest, None)
}

fn check_token(
    token_der: &[u8],
    digest: &[u8; 32],
    trusted: Option<&[TsaCertificate]>,
) -> Result<TimestampInfo, TimestampError> {
    let token = ParsedToken::parse(token_der)?;
    token.check_imprint(digest)?;
    let (gen_time, gen_time_millis) = parse_gen_time(&token.tst_info.gen_time)?;

    let signer = &token.signer;
    if signer.digest_alg.oid != ID_SHA_256 {
        return Err(TimestampError::UnsupportedAlgorithm {
            what: "digest",
            oid: signer.digest_alg.oid.to_string(),
        });
    }
    let content_type = token
        .attribute(ID_CONTENT_TYPE)
        .ok_or(TimestampError::MissingAttribute("content-type attribute"))?;
    if content_type.decode_as::<ObjectIdentifier>().ok() != Some(ID_CT_TST_INFO) {
        return Err(TimestampError::ContentTypeAttribute);
    }
    let message_digest = token
        .attribute(ID_MESSAGE_DIGEST)
        .ok_or(TimestampError::MissingAttribute("message-digest attribute"))?
        .decode_as::<OctetString>()
        .map_err(encoding("message-digest attribute"))?;
    if message_digest.as_bytes() != &Sha256::digest(&token.tst_info_der)[..] {
        return Err(TimestampError::MessageDigestMismatch);
    }

    let cert = token.signer_certificate(trusted.unwrap_or_default())?;
    let cert_der = cert.to_der().map_err(encoding("signer certificate"))?;
    check_signing_certificate(&token, cert, &cert_der)?;
    verify_signature(
        &cert.tbs_certificate.subject_public_key_info,
        &signer.signature_algorithm,
        &token.signed_attrs_der,
        signer.signature.as_bytes(),
    )?;

    let subject = cert.tbs_certificate.subject.to_string();
    check_timestamping_usage(cert, &subject)?;
    check_valid_at(cert, gen_time_millis, &gen_time)?;
    if let Some(trusted) = trusted {
        check_trusted(cert, &cert_der, trusted, gen_time_millis, &gen_time)?;
    }

    Ok(TimestampInfo {
        gen_time,
        gen_time_millis,
        serial: serial_hex(&token.tst_info.serial_number),
        policy: token.tst_info.policy.to_string(),
        tsa: subject,
    })
}

fn serial_hex(serial: &Int) -> String {
    let bytes: Vec<u8> = serial
        .as_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    if bytes.is_empty() {
        "0x00".to_owned()
    } else {
        format!("0x{}", hex::encode(bytes))
    }
}

/// The signing-certificate(-v2) attribute names `cert` by its hash (and issuer serial, if given):
/// without it, a token could be re-attributed to another certificate with the same key.
fn check_signing_certificate(
    token: &ParsedToken,
    cert: &Certificate,
    cert_der: &[u8],
) -> Result<(), TimestampError> {
    let issuer_serial_matches = |is: &Option<IssuerSerial>| {
        match is {
        None => true,
        Some(is) => {
            is.serial_number == cert.tbs_certificate.serial_number
                && is.issuer.iter().any(|name| {
                    matches!(name, GeneralName::DirectoryName(n) if *n == cert.tbs_certificate.issuer)
                })
        }
    }
    };
    if let Some(v2) = token.attribute(ID_AA_SIGNING_CERTIFICATE_V2) {
        let v2: SigningCertificateV2 = v2
            .decode_as()
            .map_err(encoding("signing-certificate-v2 attribute"))?;
        let first = v2
            .certs
            .first()
            .ok_or(TimestampError::SigningCertificateMismatch)?;
        let algorithm = first.hash_algorithm.as_ref().map_or(ID_SHA_256, |a| a.oid);
        if algorithm != ID_SHA_256 {
            return Err(TimestampError::UnsupportedAlgorithm {
                what: "ESSCertIDv2 hash",
                oid: algorithm.to_string(),
            });
        }
        if first.cert_hash.as_bytes() == &Sha256::digest(cert_der)[..]
            && issuer_serial_matches(&first.issuer_serial)
        {
            return Ok(());
        }
        return Err(TimestampError::SigningCertificateMismatch);
    }
    if let Some(v1) = token.attribute(ID_AA_SIGNING_CERTIFICATE) {
        let v1: SigningCertificate = v1
            .decode_as()
            .map_err(encoding("signing-certificate attribute"))?;
        let first = v1
            .certs
            .first()
            .ok_or(TimestampError::SigningCertificateMismatch)?;
        if first.cert_hash.as_bytes() == &sha1::Sha1::digest(cert_der)[..]
            && issuer_serial_matches(&first.issuer_serial)
        {
            return Ok(());
        }
        return Err(TimestampError::SigningCertificateMismatch);
    }
    Err(TimestampError::MissingAttribute(
        "signing-certificate attribute",
    ))
}

/// RFC 3161 §2.3: exactly one extended key usage, id-kp-timeStamping, in a critical extension.
fn check_timestamping_usage(cert: &Certificate, subject: &str) -> Result<(), TimestampError> {
    let refuse = |reason: &str| {
        Err(TimestampError::NotTimestampingCertificate {
            subject: subject.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let Some(ext) = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_CE_EXT_KEY_USAGE)
    else {
        return refuse("it has no extended key usage");
    };
    if !ext.critical {
        return refuse("its extended key usage is not critical");
    }
    match ExtendedKeyUsage::from_der(ext.extn_value.as_bytes()) {
        Ok(eku) if eku.0 == [ID_KP_TIME_STAMPING] => Ok(()),
        Ok(_) => refuse("its extended key usage is not id-kp-timeStamping alone"),
        Err(_) => refuse("its extended key usage is malformed"),
    }
}

fn check_valid_at(cert: &Certificate, millis: i64, gen_time: &str) -> Result<(), TimestampError> {
    let validity = &cert.tbs_certificate.validity;
    let as_millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let not_before = as_millis(validity.not_before.to_unix_duration());
    let not_after = as_millis(validity.not_after.to_unix_duration());
    if millis < not_before || millis > not_after {
        return Err(TimestampError::CertificateNotValid {
            subject: cert.tbs_certificate.subject.to_string(),
            gen_time: gen_time.to_owned(),
        });
    }
    Ok(())
}

fn check_trusted(
    cert: &Certificate,
    cert_der: &[u8],
    trusted: &[TsaCertificate],
    millis: i64,
    gen_time: &str,
) -> Result<(), TimestampError> {
    if trusted.iter().any(|t| t.der == cert_der) {
        return Ok(());
    }
    let tbs = &cert.tbs_certificate;
    let tbs_der = tbs.to_der().map_err(encoding("signer certificate"))?;
    for issuer in trusted {
        let issuer_tbs = &issuer.certificate.tbs_certificate;
        if issuer_tbs.subject != tbs.issuer || !is_ca(&issuer.certificate) {
            continue;
        }
        let Some(signature) = cert.signature.as_bytes() else {
            continue;
        };
        let verified = verify_signature(
            &issuer_tbs.subject_public_key_info,
            &cert.signature_algorithm,
            &tbs_der,
            signature,
        );
        if verified.is_ok() {
            return check_valid_at(&issuer.certificate, millis, gen_time);
        }
    }
    Err(TimestampError::Untrusted {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
    })
}

fn is_ca(cert: &Certificate) -> bool {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|bc| bc.ca)
}

/// Verifies `signature` over `message` with the key in `spki`: ECDSA P-256 with SHA-256, or RSA
/// PKCS #1 v1.5 with SHA-256.
fn verify_signature(
    spki: &x509_cert::spki::SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), TimestampError> {
    let unsupported = |what: &'static str, oid: &ObjectIdentifier| {
        Err(TimestampError::UnsupportedAlgorithm {
            what,
            oid: oid.to_string(),
        })
    };
    let Some(key_bytes) = spki.subject_public_key.as_bytes() else {
        return Err(TimestampError::BadSignature);
    };
    if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if curve != Some(SECP_256_R_1) {
            return Err(TimestampError::UnsupportedAlgorithm {
                what: "elliptic curve",
                oid: curve.map_or_else(|| "(none)".to_owned(), |c| c.to_string()),
            });
        }
        // Some signers name the key's algorithm instead of ecdsa-with-SHA256.
        if algorithm.oid != ECDSA_WITH_SHA_256 && algorithm.oid != ID_EC_PUBLIC_KEY {
            return unsupported("signature", &algorithm.oid);
        }
        use p256::ecdsa::signature::Verifier as _;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key_bytes)
            .map_err(|_| TimestampError::BadSignature)?;
        let sig = p256::ecdsa::Signature::from_der(signature)
            .map_err(|_| TimestampError::BadSignature)?;
        return key
            .verify(message, &sig)
            .map_err(|_| TimestampError::BadSignature);
    }
    if spki.algorithm.oid == RSA_ENCRYPTION {
        if algorithm.oid != SHA_256_WITH_RSA_ENCRYPTION && algorithm.oid != RSA_ENCRYPTION {
            return unsupported("signature", &algorithm.oid);
        }
        use rsa::pkcs1::DecodeRsaPublicKey as _;
        use rsa::signature::Verifier as _;
        let key = rsa::RsaPublicKey::from_pkcs1_der(key_bytes)
            .map_err(|_| TimestampError::BadSignature)?;
        let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key);
        let sig = rsa::pkcs1v15::Signature::try_from(signature)
            .map_err(|_| TimestampError::BadSignature)?;
        return key
            .verify(message, &sig)
            .map_err(|_| TimestampError::BadSignature);
    }
    unsupported("public key", &spki.algorithm.oid)
}

/// `genTime` as `YYYY-MM-DDTHH:MM:SS(.mmm)Z` and as Unix milliseconds. GeneralizedTime in DER:
/// `YYYYMMDDHHMMSS[.f+]Z`.
fn parse_gen_time(any: &der::Any) -> Result<(String, i64), TimestampError> {
    let bad = || TimestampError::Encoding {
        what: "TSTInfo",
        reason: "genTime is not a DER GeneralizedTime".into(),
    };
    if any.tag() != Tag::GeneralizedTime {
        return Err(bad());
    }
    let text = std::str::from_utf8(any.value()).map_err(|_| bad())?;
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| whole.get(range).and_then(|s| s.parse::<u16>().ok());
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0..4),
        num(4..6),
        num(6..8),
        num(8..10),
        num(10..12),
        num(12..14),
    ) else {
        return Err(bad());
    };
    let narrow = |v: u16| u8::try_from(v).map_err(|_| bad());
    let date_time = der::DateTime::new(
        year,
        narrow(month)?,
        narrow(day)?,
        narrow(hour)?,
        narrow(minute)?,
        narrow(second)?,
    )
    .map_err(|_| bad())?;
    let seconds = i64::try_from(date_time.unix_duration().as_secs()).map_err(|_| bad())?;
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    let mut millis = 0i64;
    if let Some(fraction) = fraction {
        // DER: at least one digit, no trailing zero.
        if fraction.is_empty()
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || fraction.ends_with('0')
        {
            return Err(bad());
        }
        let mut digits: String = fraction.chars().take(3).collect();
        while digits.len() < 3 {
            digits.push('0');
        }
        millis = digits.parse::<i64>().map_err(|_| bad())?;
        out.push('.');
        out.push_str(&digits);
    }
    out.push('Z');
    Ok((out, seconds.saturating_mul(1000).saturating_add(millis)))
}

impl fmt::Display for TimestampInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {} (serial {}, policy {})",
            self.gen_time, self.tsa, self.serial, self.policy
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_der_with_sha256_nonce_and_cert_req() {
        let der = timestamp_request(&[7; 32], 0x8000_0000_0000_0001);
        let request = TimeStampReq::from_der(&der).unwrap();
        assert_eq!(request.message_imprint.hash_algorithm.oid, ID_SHA_256);
        assert_eq!(request.message_imprint.hashed_message.as_bytes(), &[7; 32]);
        assert!(request.cert_req);
        assert!(int_is(
            request.nonce.as_ref().unwrap(),
            0x8000_0000_0000_0001
        ));
        assert!(!int_is(request.nonce.as_ref().unwrap(), 1));
        let zero = timestamp_request(&[0; 32], 0);
        assert!(int_is(
            &TimeStampReq::from_der(&zero).unwrap().nonce.unwrap(),
            0
        ));
    }

    #[test]
    fn gen_time_with_and_without_fraction() {
        let any = |s: &str| der::Any::new(Tag::GeneralizedTime, s.as_bytes()).unwrap();
        assert_eq!(
            parse_gen_time(&any("20261204091527Z")).unwrap(),
            ("2026-12-04T09:15:27Z".to_owned(), 1_796_375_727_000)
        );
        assert_eq!(
            parse_gen_time(&any("20261204091527.1Z")).unwrap(),
            ("2026-12-04T09:15:27.100Z".to_owned(), 1_796_375_727_100)
        );
        assert_eq!(
            parse_gen_time(&any("20261204091527.12345Z")).unwrap().0,
            "2026-12-04T09:15:27.123Z"
        );
        for bad in [
            "20261204091527",
            "20261204091527.Z",
            "20261204091527.10Z",
            "2026120409152Z",
            "20261304091527Z",
            "2026120409152xZ",
            "",
        ] {
            assert!(parse_gen_time(&any(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x00",
            b"\x30\x03\x02\x01\x00",
            &[0xff; 40],
        ] {
            assert!(parse_response(bad, &[0; 32], 1).is_err());
            assert!(verify_token(bad, &[0; 32], &[]).is_err());
        }
        assert!(TsaCertificate::from_pem("not a certificate").is_err());
        assert!(TsaCertificate::from_der(b"\x30\x00").is_err());
    }

    #[test]
    fn a_rejection_is_reported_with_its_status() {
        // TimeStampResp { status PKIStatusInfo { status rejection(2) } }
        let der = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02];
        assert!(matches!(
            parse_response(&der, &[0; 32], 1),
            Err(TimestampError::Rejected { .. })
        ));
        let granted_without_token = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00];
        assert_eq!(
            parse_response(&granted_without_token, &[0; 32], 1),
            Err(TimestampError::NoToken)
        );
    }
}
