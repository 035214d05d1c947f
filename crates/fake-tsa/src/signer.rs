//! The TSA's keys, certificates and token building, without HTTP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Int, OctetString, SetOfVec};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Header, Sequence, Tag};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

const ID_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ECDSA_WITH_SHA_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// The policy OID the fake TSA issues tokens under (an arc reserved for examples, RFC 7229).
pub const POLICY: &str = "1.3.6.1.5.5.7.13.1";
const POLICY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap(POLICY);

/// How the TSA certificate's extended key usage is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eku {
    /// id-kp-timeStamping in a critical extension, as RFC 3161 requires.
    CriticalTimeStamping,
    /// id-kp-timeStamping, but not marked critical.
    NonCriticalTimeStamping,
    /// No extended key usage at all.
    Absent,
}

/// What the TSA's certificates look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsaOptions {
    pub eku: Eku,
    /// The TSA certificate expired before today (its validity ends in 2000).
    pub expired: bool,
}

impl Default for TsaOptions {
    fn default() -> Self {
        TsaOptions {
            eku: Eku::CriticalTimeStamping,
            expired: false,
        }
    }
}

/// How a response departs from a correct one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// The token stamps another digest than the request's.
    WrongDigest,
    /// The token carries another nonce than the request's.
    WrongNonce,
    /// The request is refused (status rejection, with a status string and failInfo).
    Reject,
}

/// A test TSA: a CA, a TSA certificate issued by it (P-256), and the TSA's key.
pub struct TsaSigner {
    ca_pem: String,
    ca_der: Vec<u8>,
    cert_pem: String,
    cert_der: Vec<u8>,
    key: SigningKey,
    serial: AtomicU64,
}

/// Why the TSA could not be set up or could not build a token.
#[derive(Debug)]
pub struct TsaBuildError(pub String);

impl std::fmt::Display for TsaBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TsaBuildError {}

impl From<rcgen::Error> for TsaBuildError {
    fn from(e: rcgen::Error) -> Self {
        TsaBuildError(format!("certificate: {e}"))
    }
}

impl From<der::Error> for TsaBuildError {
    fn from(e: der::Error) -> Self {
        TsaBuildError(format!("DER: {e}"))
    }
}

/// `TSTInfo` (RFC 3161) with `genTime` kept as raw bytes, so it can carry milliseconds.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TstInfo {
    version: TspVersion,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: der::Any,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
}

/// `ESSCertIDv2` with the default hash algorithm (SHA-256).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ID_SHA_256,
        parameters: None,
    }
}

fn sequence(parts: &[&[u8]]) -> Result<Vec<u8>, der::Error> {
    let body: Vec<u8> = parts.concat();
    let mut out = Header::new(Tag::Sequence, body.len())?.to_der()?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// DER GeneralizedTime text for `time`, with milliseconds when there are any (DER drops
/// trailing zeros of the fraction).
pub fn gen_time_text(time: SystemTime) -> Result<String, TsaBuildError> {
    let since = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TsaBuildError("time before 1970".into()))?;
    let dt = der::DateTime::from_unix_duration(Duration::from_secs(since.as_secs()))?;
    let mut text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minutes(),
        dt.seconds()
    );
    let millis = since.subsec_millis();
    if millis != 0 {
        let fraction = format!("{millis:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    Ok(text)
}

impl TsaSigner {
    /// A TSA with a critical id-kp-timeStamping certificate.
    pub fn new() -> Result<TsaSigner, TsaBuildError> {
        TsaSigner::with_options(TsaOptions::default())
    }

    pub fn with_options(options: TsaOptions) -> Result<TsaSigner, TsaBuildError> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType, IsCa,
            KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
        };
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "Writ tests");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Writ Test TSA Root CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

        let tsa_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Writ tests");
        params
            .distinguished_name
            .push(DnType::CommonName, "Writ Test TSA");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if options.expired {
            params.not_before = rcgen::date_time_ymd(1999, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 1, 1);
        }
        // rcgen writes its own extendedKeyUsage non-critical; RFC 3161 wants it critical.
        // SEQUENCE { OID 1.3.6.1.5.5.7.3.8 }
        let eku = vec![
            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
        ];
        match options.eku {
            Eku::Absent => {}
            Eku::CriticalTimeStamping | Eku::NonCriticalTimeStamping => {
                let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], eku);
                ext.set_criticality(options.eku == Eku::CriticalTimeStamping);
                params.custom_extensions.push(ext);
            }
        }
        let cert = params.signed_by(&tsa_key, &ca)?;
        let key = SigningKey::from_pkcs8_der(&tsa_key.serialize_der())
            .map_err(|e| TsaBuildError(format!("TSA key: {e}")))?;
        Ok(TsaSigner {
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
            serial: AtomicU64::new(1),
        })
    }

    /// The CA certificate (PEM): what a verifier trusts.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The TSA's own (end-entity) certificate, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A token stamping `digest` now.
    pub fn token(&self, digest: &[u8; 32], nonce: Option<u64>) -> Result<Vec<u8>, TsaBuildError> {
        let nonce = nonce
            .map(|n| n.to_der().and_then(|d| Int::from_der(&d)))
            .transpose()?;
        self.token_with(digest, nonce, &gen_time_text(SystemTime::now())?, true)
    }

    /// A token with every field given: `gen_time` is DER GeneralizedTime text.
    pub fn token_with(
        &self,
        digest: &[u8; 32],
        nonce: Option<Int>,
        gen_time: &str,
        include_certificate: bool,
    ) -> Result<Vec<u8>, TsaBuildError> {
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        let tst_info = TstInfo {
            version: TspVersion::V1,
            policy: POLICY_OID,
            message_imprint: MessageImprint {
                hash_algorithm: x509_cert::spki::AlgorithmIdentifier {
                    oid: ID_SHA_256,
                    parameters: None,
                },
                hashed_message: OctetString::new(digest.to_vec())?,
            },
            serial_number: Int::from_der(&serial.to_der()?)?,
            gen_time: der::Any::new(Tag::GeneralizedTime, gen_time.as_bytes())?,
            nonce,
        }
        .to_der()?;

        let attribute = |oid, value: der::Any| -> Result<Attribute, der::Error> {
            let mut values = SetOfVec::new();
            values.insert(value)?;
            Ok(Attribute { oid, values })
        };
        let mut signed_attrs = SetOfVec::new();
        signed_attrs.insert(attribute(
            ID_CONTENT_TYPE,
            der::Any::encode_from(&ID_CT_TST_INFO)?,
        )?)?;
        signed_attrs.insert(attribute(
            ID_MESSAGE_DIGEST,
            der::Any::encode_from(&OctetString::new(Sha256::digest(&tst_info).to_vec())?)?,
        )?)?;
        signed_attrs.insert(attribute(
            ID_AA_SIGNING_CERTIFICATE_V2,
            der::Any::encode_from(&SigningCertificateV2 {
                certs: vec![EssCertIdV2 {
                    cert_hash: OctetString::new(Sha256::digest(&self.cert_der).to_vec())?,
                }],
            })?,
        )?)?;
        // RFC 5652 §5.4: the signature is over the DER of the attributes as a SET OF.
        let signature: Signature = self.key.sign(&signed_attrs.to_der()?);

        let cert = Certificate::from_der(&self.cert_der)?;
        let mut digest_algorithms = SetOfVec::new();
        digest_algorithms.insert(sha256_algorithm())?;
        let certificates = if include_certificate {
            let mut set = SetOfVec::new();
            set.insert(CertificateChoices::Certificate(cert.clone()))?;
            Some(CertificateSet(set))
        } else {
            None
        };
        let mut signer_infos = SetOfVec::new();
        signer_infos.insert(SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: cert.tbs_certificate.issuer.clone(),
                serial_number: cert.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256_algorithm(),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA_256,
                parameters: None,
            },
            signature: OctetString::new(signature.to_der().as_bytes().to_vec())?,
            unsigned_attrs: None,
        })?;
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(der::Any::encode_from(&OctetString::new(tst_info)?)?),
            },
            certificates,
            crls: None,
            signer_infos: SignerInfos(signer_infos),
        };
        Ok(ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: der::Any::encode_from(&signed_data)?,
        }
        .to_der()?)
    }

    /// The DER `TimeStampResp` to a DER `TimeStampReq`. A request that does not parse, or asks
    /// for another hash than SHA-256, is answered with a rejection, as a real TSA does.
    pub fn respond(
        &self,
        request: &[u8],
        misbehaviour: Option<Misbehaviour>,
    ) -> Result<Vec<u8>, TsaBuildError> {
        let Ok(request) = TimeStampReq::from_der(request) else {
            // failInfo badDataFormat (5)
            return rejection("malformed request", 5);
        };
        if misbehaviour == Some(Misbehaviour::Reject) {
            // failInfo systemFailure (25)
            return rejection("the TSA is not accepting requests", 25);
        }
        let imprint = &request.message_imprint;
        let Ok(mut digest) = <[u8; 32]>::try_from(imprint.hashed_message.as_bytes()) else {
            return rejection("the imprint is not 32 bytes", 5);
        };
        if imprint.hash_algorithm.oid != ID_SHA_256 {
            // failInfo badAlg (0)
            return rejection("only SHA-256 imprints are accepted", 0);
        }
        let mut nonce = request.nonce.clone();
        match misbehaviour {
            Some(Misbehaviour::WrongDigest) => digest[0] ^= 1,
            Some(Misbehaviour::WrongNonce) => {
                let other = 0x1234_5678_u64.to_der()?;
                nonce = Some(Int::from_der(&other)?);
            }
            _ => {}
        }
        let token = self.token_with(
            &digest,
            nonce,
            &gen_time_text(SystemTime::now())?,
            request.cert_req,
        )?;
        // PKIStatusInfo { status granted(0) }
        let status = sequence(&[&0u8.to_der()?])?;
        Ok(sequence(&[&status, &token])?)
    }
}

fn rejection(text: &str, fail_bit: usize) -> Result<Vec<u8>, TsaBuildError> {
    // PKIStatusInfo { status rejection(2), statusString SEQUENCE { UTF8String },
    //                 failInfo BIT STRING (one named bit) }
    let status = 2u8.to_der()?;
    let strings = sequence(&[&der::asn1::Utf8StringRef::new(text)?.to_der()?])?;
    let mut bits = vec![0u8; fail_bit / 8 + 1];
    if let Some(byte) = bits.get_mut(fail_bit / 8) {
        *byte = 0x80 >> (fail_bit % 8);
    }
    let unused = u8::try_from(bits.last().map_or(0, |b| b.trailing_zeros())).unwrap_or(0);
    let fail_info = der::asn1::BitString::new(unused, bits)?.to_der()?;
    let info = sequence(&[&status, &strings, &fail_info])?;
    Ok(sequence(&[&info])?)
}
