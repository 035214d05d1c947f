//! The vault's state and its REST answers: the subset of the Key Vault keys API (api-version
//! 7.x / 2025-07-01) and of the Entra ID token endpoint that the official Rust SDK calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::StatusCode;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use rand::rngs::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{Event, Fault, KeyKind};

/// The Entra ID audience Key Vault names in its challenge.
pub(crate) const RESOURCE: &str = "https://vault.azure.net";
const SCOPE: &str = "https://vault.azure.net/.default";
const RECOVERABLE_DAYS: u64 = 90;

/// A request as the server read it.
pub(crate) struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

/// What to send back.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            body,
        }
    }

    /// Key Vault's error shape: `{"error":{"code","message","innererror"?}}`.
    fn error(status: StatusCode, code: &str, message: String, inner: Option<&str>) -> Self {
        let mut error = json!({ "code": code, "message": message });
        if let Some(inner) = inner {
            error["innererror"] = json!({ "code": inner });
        }
        Self {
            status,
            headers: Vec::new(),
            body: json!({ "error": error }),
        }
    }

    fn bad_parameter(message: impl Into<String>) -> Self {
        Self::error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            message.into(),
            None,
        )
    }

    fn key_not_found(name: &str) -> Self {
        Self::error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            format!("A key with (name/id) {name} was not found in this key vault."),
            None,
        )
    }

    fn disabled(operation: &str) -> Self {
        Self::error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("Operation {operation} is not allowed on a disabled key."),
            Some("KeyDisabled"),
        )
    }
}

pub(crate) struct State {
    pub base_url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub challenges: AtomicUsize,
    pub tokens_issued: AtomicUsize,
    pub fault: Mutex<Option<Fault>>,
    pub events: Mutex<Vec<Event>>,
    pub vault: Mutex<Vault>,
    tokens: Mutex<HashMap<String, String>>,
}

#[derive(Default)]
pub(crate) struct Vault {
    keys: BTreeMap<String, Vec<Version>>,
    deleted: BTreeMap<String, Deleted>,
}

struct Deleted {
    versions: Vec<Version>,
    deleted_at: u64,
}

struct Version {
    id: String,
    material: Material,
    key_ops: Vec<String>,
    enabled: bool,
    tags: BTreeMap<String, String>,
    created: u64,
    updated: u64,
}

enum Material {
    Rsa(Box<RsaPrivateKey>),
    Ec(SigningKey),
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Key Vault sends base64url without padding; accept padding too.
fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

impl State {
    pub fn new(base_url: String) -> Self {
        Self {
            base_url,
            tenant_id: uuid::Uuid::new_v4().to_string(),
            client_id: uuid::Uuid::new_v4().to_string(),
            client_secret: format!("fake-secret-{}", uuid::Uuid::new_v4().simple()),
            challenges: AtomicUsize::new(0),
            tokens_issued: AtomicUsize::new(0),
            fault: Mutex::new(None),
            events: Mutex::new(Vec::new()),
            vault: Mutex::new(Vault::default()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn record(&self, event: Event) {
        lock(&self.events).push(event);
    }

    pub fn answer(&self, call: &Call<'_>) -> Answer {
        let segments: Vec<&str> = call
            .path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        if let [tenant, "oauth2", "v2.0", "token"] = segments.as_slice() {
            return self.token(call, tenant);
        }

        let token = call
            .authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .filter(|t| {
                lock(&self.tokens)
                    .get(*t)
                    .is_some_and(|scope| scope == SCOPE)
            });
        if token.is_none() {
            // Key Vault's first answer to a client: authenticate, and with whom.
            self.challenges.fetch_add(1, Ordering::SeqCst);
            self.record(Event::Challenge {
                method: call.method.to_owned(),
                path: call.path.to_owned(),
                had_authorization: call.authorization.is_some(),
                body_len: call.body.len(),
            });
            return Answer {
                status: StatusCode::UNAUTHORIZED,
                headers: vec![(
                    "www-authenticate",
                    format!(
                        "Bearer authorization=\"https://login.microsoftonline.com/{}\", resource=\"{RESOURCE}\"",
                        self.tenant_id
                    ),
                )],
                body: json!({
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10000: Request is missing a Bearer or PoP token."
                    }
                }),
            };
        }
        self.record(Event::Request {
            method: call.method.to_owned(),
            path: call.path.to_owned(),
        });
        if !call.query.split('&').any(|p| p.starts_with("api-version=")) {
            return Answer::bad_parameter("The api-version query parameter is required.");
        }
        let body: Value = if call.body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(call.body) {
                Ok(v) => v,
                Err(e) => {
                    return Answer::bad_parameter(format!("The request body is not JSON: {e}"));
                }
            }
        };

        let mut vault = lock(&self.vault);
        match (call.method, segments.as_slice()) {
            ("POST", ["keys", name, "create"]) => vault.create(&self.base_url, name, &body),
            ("POST", ["keys", name, "rotate"]) => vault.rotate(&self.base_url, name),
            ("GET", ["keys", name, "versions"]) => vault.list_versions(&self.base_url, name),
            ("GET", ["keys", name]) => vault.get(&self.base_url, name, None),
            ("GET", ["keys", name, version]) => vault.get(&self.base_url, name, Some(version)),
            ("PATCH", ["keys", name]) => vault.update(&self.base_url, name, None, &body),
            ("PATCH", ["keys", name, version]) => {
                vault.update(&self.base_url, name, Some(version), &body)
            }
            ("DELETE", ["keys", name]) => vault.delete(&self.base_url, name),
            ("GET", ["deletedkeys", name]) => vault.get_deleted(&self.base_url, name),
            ("POST", ["deletedkeys", name, "recover"]) => vault.recover(&self.base_url, name),
            ("POST", ["keys", name, version, operation]) => {
                vault.operate(&self.base_url, name, version, operation, &body)
            }
            _ => Answer::error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!(
                    "{} {} is not part of this fake vault",
                    call.method, call.path
                ),
                None,
            ),
        }
    }

    /// The client-credentials grant of Entra ID's v2.0 token endpoint.
    fn token(&self, call: &Call<'_>, tenant: &str) -> Answer {
        let form: HashMap<String, String> = form_pairs(call.body);
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
        let entra_error = |status: StatusCode, error: &str, code: u32, description: &str| Answer {
            status,
            headers: Vec::new(),
            body: json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {description}"),
                "error_codes": [code],
            }),
        };
        if call.method != "POST" || field("grant_type") != "client_credentials" {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            );
        }
        if tenant != self.tenant_id {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                "Tenant not found.",
            );
        }
        if field("client_id") != self.client_id || field("client_secret") != self.client_secret {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        let mut token = [0u8; 24];
        OsRng.fill_bytes(&mut token);
        let token = b64(&token);
        lock(&self.tokens).insert(token.clone(), field("scope").to_owned());
        self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        self.record(Event::TokenIssued {
            scope: field("scope").to_owned(),
        });
        Answer::ok(json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token,
        }))
    }
}

impl Vault {
    pub fn create_key(
        &mut self,
        base_url: &str,
        name: &str,
        kind: KeyKind,
        tags: BTreeMap<String, String>,
    ) -> Result<String, String> {
        let material = match kind {
            KeyKind::Rsa { bits } => Material::Rsa(Box::new(
                RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| e.to_string())?,
            )),
            KeyKind::EcP256 => Material::Ec(SigningKey::random(&mut OsRng)),
        };
        let key_ops = match material {
            Material::Rsa(_) => [
                "encrypt",
                "decrypt",
                "sign",
                "verify",
                "wrapKey",
                "unwrapKey",
            ]
            .map(String::from)
            .to_vec(),
            Material::Ec(_) => ["sign", "verify"].map(String::from).to_vec(),
        };
        let created = now();
        let version = Version {
            id: uuid::Uuid::new_v4().simple().to_string(),
            material,
            key_ops,
            enabled: true,
            tags,
            created,
            updated: created,
        };
        let kid = kid(base_url, name, &version.id);
        self.keys.entry(name.to_owned()).or_default().push(version);
        Ok(kid)
    }

    pub fn set_enabled(&mut self, name: &str, version: &str, enabled: bool) -> bool {
        match self.version_mut(name, Some(version)) {
            Some(v) => {
                v.enabled = enabled;
                v.updated = now();
                true
            }
            None => false,
        }
    }

    /// RSA-OAEP-256 under a version's public key: what anyone who read the key can compute.
    pub fn encrypt_with_public_key(
        &self,
        name: &str,
        version: &str,
        plaintext: &[u8],
    ) -> Option<Vec<u8>> {
        match &self.version(name, Some(version))?.material {
            Material::Rsa(key) => key
                .to_public_key()
                .encrypt(&mut OsRng, Oaep::new::<Sha256>(), plaintext)
                .ok(),
            Material::Ec(_) => None,
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }

    pub fn is_deleted(&self, name: &str) -> bool {
        self.deleted.contains_key(name)
    }

    pub fn version_count(&self, name: &str) -> usize {
        self.keys.get(name).map_or(0, Vec::len)
    }

    fn version_mut(&mut self, name: &str, version: Option<&str>) -> Option<&mut Version> {
        let versions = self.keys.get_mut(name)?;
        match version {
            None => versions.last_mut(),
            Some(id) => versions.iter_mut().find(|v| v.id == id),
        }
    }

    fn version(&self, name: &str, version: Option<&str>) -> Option<&Version> {
        let versions = self.keys.get(name)?;
        match version {
            None => versions.last(),
            Some(id) => versions.iter().find(|v| v.id == id),
        }
    }

    fn create(&mut self, base_url: &str, name: &str, body: &Value) -> Answer {
        if !valid_name(name) {
            return Answer::bad_parameter(format!("Key name {name} is invalid."));
        }
        if self.deleted.contains_key(name) {
            return Answer::error(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Key {name} is currently in a deleted but recoverable state, and its name \
                     cannot be reused; in this state, the key can only be recovered or purged."
                ),
                Some("ObjectIsDeletedButRecoverable"),
            );
        }
        let kind = match body["kty"].as_str() {
            Some("RSA" | "RSA-HSM") => match body["key_size"].as_u64().unwrap_or(2048) {
                bits @ (2048 | 3072 | 4096) => KeyKind::Rsa {
                    bits: bits as usize,
                },
                other => {
                    return Answer::bad_parameter(format!("Unsupported RSA key size {other}."));
                }
            },
            Some("EC" | "EC-HSM") => match body["crv"].as_str().unwrap_or("P-256") {
                "P-256" => KeyKind::EcP256,
                other => {
                    return Answer::bad_parameter(format!(
                        "Curve {other} is not supported by this fake vault."
                    ));
                }
            },
            other => return Answer::bad_parameter(format!("Unsupported key type {other:?}.")),
        };
        let tags = tags_of(body);
        if let Err(e) = self.create_key(base_url, name, kind, tags) {
            return Answer::error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e, None);
        }
        let version = self.version_mut(name, None).expect("just created");
        if let Some(ops) = body["key_ops"].as_array() {
            version.key_ops = ops
                .iter()
                .filter_map(|o| o.as_str().map(String::from))
                .collect();
        }
        if let Some(enabled) = body["attributes"]["enabled"].as_bool() {
            version.enabled = enabled;
        }
        Answer::ok(bundle(base_url, name, version))
    }

    /// A new version like the latest one (what Key Vault's rotate does without a policy).
    fn rotate(&mut self, base_url: &str, name: &str) -> Answer {
        let Some(latest) = self.version(name, None) else {
            return Answer::key_not_found(name);
        };
        let kind = match &latest.material {
            Material::Rsa(k) => KeyKind::Rsa { bits: k.size() * 8 },
            Material::Ec(_) => KeyKind::EcP256,
        };
        let (tags, ops) = (latest.tags.clone(), latest.key_ops.clone());
        if let Err(e) = self.create_key(base_url, name, kind, tags) {
            return Answer::error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e, None);
        }
        let version = self.version_mut(name, None).expect("just created");
        version.key_ops = ops;
        Answer::ok(bundle(base_url, name, version))
    }

    fn get(&self, base_url: &str, name: &str, version: Option<&str>) -> Answer {
        match self.version(name, version) {
            None => Answer::key_not_found(name),
            Some(v) if !v.enabled => Answer::disabled("get"),
            Some(v) => Answer::ok(bundle(base_url, name, v)),
        }
    }

    fn list_versions(&self, base_url: &str, name: &str) -> Answer {
        let Some(versions) = self.keys.get(name) else {
            return Answer::key_not_found(name);
        };
        let value: Vec<Value> = versions
            .iter()
            .map(|v| {
                json!({
                    "kid": kid(base_url, name, &v.id),
                    "attributes": attributes(v),
                    "tags": v.tags,
                })
            })
            .collect();
        Answer::ok(json!({ "value": value, "nextLink": null }))
    }

    /// PATCH: attributes (`enabled`), tags and permitted operations; allowed on a disabled
    /// version, which is how one is enabled again.
    fn update(
        &mut self,
        base_url: &str,
        name: &str,
        version: Option<&str>,
        body: &Value,
    ) -> Answer {
        let Some(v) = self.version_mut(name, version) else {
            return Answer::key_not_found(name);
        };
        if let Some(enabled) = body["attributes"]["enabled"].as_bool() {
            v.enabled = enabled;
        }
        if body.get("tags").is_some_and(Value::is_object) {
            v.tags = tags_of(body);
        }
        if let Some(ops) = body["key_ops"].as_array() {
            v.key_ops = ops
                .iter()
                .filter_map(|o| o.as_str().map(String::from))
                .collect();
        }
        v.updated = now();
        Answer::ok(bundle(base_url, name, v))
    }

    /// Soft delete: the whole key, every version, becomes a deleted key, recoverable until its
    /// purge date.
    fn delete(&mut self, base_url: &str, name: &str) -> Answer {
        let Some(versions) = self.keys.remove(name) else {
            return Answer::key_not_found(name);
        };
        self.deleted.insert(
            name.to_owned(),
            Deleted {
                versions,
                deleted_at: now(),
            },
        );
        self.get_deleted(base_url, name)
    }

    /// Undoes a soft delete: every version is back under its name, as it was.
    fn recover(&mut self, base_url: &str, name: &str) -> Answer {
        let Some(deleted) = self.deleted.remove(name) else {
            return Answer::error(
                StatusCode::NOT_FOUND,
                "KeyNotFound",
                format!("Deleted Key not found: {name}"),
                None,
            );
        };
        // Answered with the latest version as it is, disabled or not (a GET would refuse a
        // disabled one).
        let body = bundle(
            base_url,
            name,
            deleted.versions.last().expect("a key has a version"),
        );
        self.keys.insert(name.to_owned(), deleted.versions);
        Answer::ok(body)
    }

    fn get_deleted(&self, base_url: &str, name: &str) -> Answer {
        let Some(deleted) = self.deleted.get(name) else {
            return Answer::error(
                StatusCode::NOT_FOUND,
                "KeyNotFound",
                format!("Deleted Key not found: {name}"),
                None,
            );
        };
        let latest = deleted.versions.last().expect("a key has a version");
        let mut body = bundle(base_url, name, latest);
        body["recoveryId"] = json!(format!("{base_url}/deletedkeys/{name}"));
        body["deletedDate"] = json!(deleted.deleted_at);
        body["scheduledPurgeDate"] = json!(deleted.deleted_at + RECOVERABLE_DAYS * 86_400);
        Answer::ok(body)
    }

    fn operate(
        &self,
        base_url: &str,
        name: &str,
        version: &str,
        operation: &str,
        body: &Value,
    ) -> Answer {
        let permission = match operation {
            "sign" => "sign",
            "wrapkey" => "wrapKey",
            "unwrapkey" => "unwrapKey",
            _ => {
                return Answer::error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("operation {operation} is not part of this fake vault"),
                    None,
                );
            }
        };
        let Some(v) = self.version(name, Some(version)) else {
            return Answer::key_not_found(name);
        };
        if !v.enabled {
            return Answer::disabled(permission);
        }
        if !v.key_ops.iter().any(|o| o == permission) {
            return Answer::error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("Operation {permission} is not permitted on this key."),
                Some("KeyOperationForbidden"),
            );
        }
        let alg = body["alg"].as_str().unwrap_or("");
        let Some(value) = body["value"].as_str().and_then(unb64) else {
            return Answer::bad_parameter("value must be base64url");
        };
        let result = match (&v.material, permission, alg) {
            (Material::Ec(key), "sign", "ES256") => {
                if value.len() != 32 {
                    return Answer::bad_parameter("ES256 signs a 32-byte SHA-256 digest.");
                }
                let signature: Signature = match key.sign_prehash(&value) {
                    Ok(s) => s,
                    Err(e) => return Answer::bad_parameter(e.to_string()),
                };
                // JWS form: r ‖ s, 32 bytes each.
                signature.to_bytes().to_vec()
            }
            (Material::Rsa(key), "wrapKey", "RSA-OAEP-256") => {
                match key
                    .to_public_key()
                    .encrypt(&mut OsRng, Oaep::new::<Sha256>(), &value)
                {
                    Ok(ct) => ct,
                    Err(e) => return Answer::bad_parameter(e.to_string()),
                }
            }
            (Material::Rsa(key), "unwrapKey", "RSA-OAEP-256") => {
                match key.decrypt(Oaep::new::<Sha256>(), &value) {
                    Ok(pt) => pt,
                    Err(_) => return Answer::bad_parameter("The parameter is incorrect."),
                }
            }
            _ => {
                return Answer::bad_parameter(format!(
                    "Algorithm {alg:?} is not supported for {permission} with this key."
                ));
            }
        };
        Answer::ok(json!({
            "kid": kid(base_url, name, &v.id),
            "value": b64(&result),
        }))
    }
}

fn kid(base_url: &str, name: &str, version: &str) -> String {
    format!("{base_url}/keys/{name}/{version}")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn tags_of(body: &Value) -> BTreeMap<String, String> {
    body["tags"]
        .as_object()
        .map(|tags| {
            tags.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn attributes(v: &Version) -> Value {
    json!({
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    })
}

/// A key bundle: the public JSON Web Key, attributes and tags (never private material).
fn bundle(base_url: &str, name: &str, v: &Version) -> Value {
    let mut jwk = match &v.material {
        Material::Rsa(key) => json!({
            "kty": "RSA",
            "n": b64(&key.n().to_bytes_be()),
            "e": b64(&key.e().to_bytes_be()),
        }),
        Material::Ec(key) => {
            let point = key.verifying_key().to_encoded_point(false);
            json!({
                "kty": "EC",
                "crv": "P-256",
                "x": b64(point.x().expect("uncompressed point")),
                "y": b64(point.y().expect("uncompressed point")),
            })
        }
    };
    jwk["kid"] = json!(kid(base_url, name, &v.id));
    jwk["key_ops"] = json!(v.key_ops);
    json!({
        "key": jwk,
        "attributes": attributes(v),
        "tags": v.tags,
    })
}

/// `application/x-www-form-urlencoded` pairs.
fn form_pairs(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((percent_decode(k), percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_decoded() {
        let form = form_pairs(b"scope=https%3A%2F%2Fvault.azure.net%2F.default&a=b+c&bad=%zz");
        assert_eq!(form["scope"], "https://vault.azure.net/.default");
        assert_eq!(form["a"], "b c");
        assert_eq!(form["bad"], "%zz");
    }
}
