//! Access tokens (ES256 JWTs with `kid`, keys in the control plane sealed under the master key and
//! published as a JWK set) and opaque tokens (refresh and enrollment: random, stored hashed).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;
use writ_keys::KeyProvider;
use zeroize::Zeroizing;

use crate::AuthError;

pub const ISSUER: &str = "writ";
const KEY_LOCK: i64 = 0x7772_6974_6a77_746b;

/// What an access token says. `aid` is the agency for agency users and absent for operators.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The user (or operator) id.
    pub sub: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aid: Option<Uuid>,
    pub role: String,
    /// The session id; every request checks the session row.
    pub sid: Uuid,
    /// When the user authenticated (login), seconds since the epoch.
    pub auth_time: i64,
    pub iat: i64,
    pub exp: i64,
}

/// The deployment's token-signing keys: the newest signs, all unretired ones verify. Loaded once
/// per process; verification (aws-lc, through jsonwebtoken's `aws_lc_rs` backend) reads nothing
/// but these.
pub struct TokenKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    jwks: serde_json::Value,
    verified: VerifiedTokens,
}

/// Tokens these keys have verified, by SHA-256 of the whole token, with their claims: a client
/// sends the same token on every request until it expires, and an ES256 verification costs about
/// a fifth of an authenticated read's CPU here. Only a token that verified is kept, only until
/// its `exp`, and only as long as these keys (a process loads them once); what the session row
/// says (revoked, idle, user disabled) is still read on every request by the caller.
#[derive(Default)]
struct VerifiedTokens(std::sync::Mutex<HashMap<[u8; 32], Claims>>);

/// Tokens remembered at most; a full cache drops its expired entries, then everything.
const VERIFIED_TOKENS: usize = 8192;

impl VerifiedTokens {
    /// The claims of a verified token, while it has not expired at `now` (no leeway, as
    /// verification).
    fn get(&self, digest: &[u8; 32], now: i64) -> Option<Claims> {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match cache.get(digest) {
            Some(c) if c.exp > now => Some(c.clone()),
            Some(_) => {
                cache.remove(digest);
                None
            }
            None => None,
        }
    }

    fn put(&self, digest: [u8; 32], claims: &Claims, now: i64) {
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= VERIFIED_TOKENS {
            cache.retain(|_, c| c.exp > now);
            if cache.len() >= VERIFIED_TOKENS {
                cache.clear();
            }
        }
        cache.insert(digest, claims.clone());
    }
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKeys {{ kid: {} }}", self.kid)
    }
}

fn aad(kid: &str) -> Vec<u8> {
    format!("writ:token-signing:{kid}").into_bytes()
}

fn coordinates(key: &VerifyingKey) -> Result<(String, String), AuthError> {
    let point = key.to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(AuthError::internal("token key: not an uncompressed point"));
    };
    Ok((B64.encode(x), B64.encode(y)))
}

impl TokenKeys {
    /// Loads the signing keys, creating the first one when there is none. Replicas starting
    /// together agree on one key through an advisory lock.
    pub async fn load_or_create(pool: &PgPool, keys: &KeyProvider) -> Result<Self, AuthError> {
        let local = keys.local();
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut rows = sqlx::query(
            "SELECT kid, sealed_key, public_key_pem FROM control.token_signing_keys \
             WHERE retired_at IS NULL ORDER BY created_at, kid",
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            let signing = SigningKey::random(&mut rand::rngs::OsRng);
            let public_pem = signing
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(AuthError::internal)?;
            let digest = Sha256::digest(public_pem.as_bytes());
            let kid = format!("writ-{}", &hex::encode(digest)[..16]);
            let der = signing.to_pkcs8_der().map_err(AuthError::internal)?;
            let sealed = local
                .seal_secret(der.as_bytes(), &aad(&kid))
                .map_err(AuthError::internal)?;
            sqlx::query(
                "INSERT INTO control.token_signing_keys (kid, sealed_key, public_key_pem) VALUES ($1, $2, $3)",
            )
            .bind(&kid)
            .bind(sealed)
            .bind(&public_pem)
            .execute(&mut *tx)
            .await?;
            rows = sqlx::query(
                "SELECT kid, sealed_key, public_key_pem FROM control.token_signing_keys \
                 WHERE retired_at IS NULL ORDER BY created_at, kid",
            )
            .fetch_all(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let mut publics = Vec::new();
        let mut newest = None;
        for row in &rows {
            let kid: String = row.try_get("kid")?;
            let pem: String = row.try_get("public_key_pem")?;
            let public = VerifyingKey::from_public_key_pem(&pem).map_err(AuthError::internal)?;
            let sealed: Vec<u8> = row.try_get("sealed_key")?;
            publics.push((kid.clone(), public));
            newest = Some((kid, sealed));
        }
        let (kid, sealed) = newest.ok_or_else(|| AuthError::internal("no token signing key"))?;
        let der = local
            .open_secret(&sealed, &aad(&kid))
            .map_err(|e| AuthError::internal(format!("token signing key {kid}: {e}")))?;
        let signing = SigningKey::from_pkcs8_der(&der).map_err(AuthError::internal)?;
        Self::from_keys(kid, &signing, &publics)
    }

    /// `signing` signs as `kid`; every key of `publics` verifies (and is published).
    fn from_keys(
        kid: String,
        signing: &SigningKey,
        publics: &[(String, VerifyingKey)],
    ) -> Result<Self, AuthError> {
        let mut decoding = HashMap::new();
        let mut jwks = Vec::new();
        for (kid, public) in publics {
            let (x, y) = coordinates(public)?;
            decoding.insert(
                kid.clone(),
                DecodingKey::from_ec_components(&x, &y).map_err(AuthError::internal)?,
            );
            jwks.push(serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"
            }));
        }
        let pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(AuthError::internal)?;
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(AuthError::internal)?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        Ok(Self {
            kid,
            encoding,
            decoding,
            validation,
            jwks: serde_json::json!({ "keys": jwks }),
            verified: VerifiedTokens::default(),
        })
    }

    /// The published key set (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(AuthError::internal)
    }

    /// Verifies signature (ES256 only, by `kid`), issuer and expiry. Everything else about the
    /// session is checked against the database by the caller.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    /// [`TokenKeys::verify`] at `now` for a token verified before (which jsonwebtoken then
    /// checked against the system clock).
    fn verify_at(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest, now) {
            return Ok(claims);
        }
        let claims = self.verify_signature(token)?;
        if claims.exp <= now {
            return Err(AuthError::InvalidToken("token expired".into()));
        }
        self.verified.put(digest, &claims, now);
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let bad = |m: &str| AuthError::InvalidToken(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed token"))?;
        if header.alg != Algorithm::ES256 {
            return Err(bad("token algorithm not accepted"));
        }
        let kid = header.kid.ok_or_else(|| bad("token has no kid"))?;
        let key = self
            .decoding
            .get(&kid)
            .ok_or_else(|| bad("token signed by an unknown key"))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => bad("token expired"),
                _ => bad("token signature or claims invalid"),
            })
    }
}

/// Where an opaque token belongs: an agency (by id) or the control plane (operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRealm {
    Agency(Uuid),
    Platform,
}

/// A fresh opaque token `<kind>.<realm>.<secret>` and the SHA-256 stored in place of it.
pub fn new_opaque(kind: &str, realm: TokenRealm) -> (Zeroizing<String>, Vec<u8>) {
    let secret: [u8; 32] = rand::random();
    let realm = match realm {
        TokenRealm::Agency(id) => id.simple().to_string(),
        TokenRealm::Platform => "op".into(),
    };
    let token = Zeroizing::new(format!("{kind}.{realm}.{}", B64.encode(secret)));
    let hash = opaque_hash(&token);
    (token, hash)
}

pub fn opaque_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Reads the realm of an opaque token of `kind`; the secret is checked by its stored hash.
pub fn opaque_realm(kind: &str, token: &str) -> Option<TokenRealm> {
    let mut parts = token.split('.');
    let (k, realm, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if k != kind || parts.next().is_some() || secret.len() != 43 {
        return None;
    }
    if realm == "op" {
        return Some(TokenRealm::Platform);
    }
    Uuid::try_parse(realm).ok().map(TokenRealm::Agency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(kid: &str, signing: &SigningKey) -> TokenKeys {
        let publics = [(kid.to_owned(), *signing.verifying_key())];
        TokenKeys::from_keys(kid.to_owned(), signing, &publics).expect("token keys")
    }

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            sub: Uuid::new_v4(),
            aid: Some(Uuid::new_v4()),
            role: "officer".into(),
            sid: Uuid::new_v4(),
            auth_time: now,
            iat: now,
            exp: now + exp_in,
        }
    }

    fn refused(keys: &TokenKeys, token: &str) -> String {
        match keys.verify(token) {
            Err(AuthError::InvalidToken(m)) => m,
            other => panic!("expected an invalid token, got {other:?}"),
        }
    }

    fn part(v: serde_json::Value) -> String {
        B64.encode(serde_json::to_vec(&v).expect("json"))
    }

    #[test]
    fn verifies_its_own_tokens_and_refuses_forged_ones() {
        let real = keys("writ-a", &SigningKey::random(&mut rand::rngs::OsRng));
        let c = claims(900);
        let token = real.sign(&c).expect("sign");
        assert_eq!(real.verify(&token).expect("verify"), c);

        // Our kid, another key.
        let stranger = keys("writ-a", &SigningKey::random(&mut rand::rngs::OsRng));
        let forged = stranger.sign(&c).expect("sign");
        assert_eq!(refused(&real, &forged), "token signature or claims invalid");

        // Claims changed after signing.
        let (head, rest) = token.split_once('.').expect("header");
        let sig = rest.rsplit_once('.').expect("signature").1;
        let mut moved = c.clone();
        moved.aid = Some(Uuid::new_v4());
        let tampered = format!("{head}.{}.{sig}", part(serde_json::json!(moved)));
        assert_eq!(
            refused(&real, &tampered),
            "token signature or claims invalid"
        );

        // alg none, and HS256 keyed with something public.
        let payload = part(serde_json::json!(c));
        let none = format!("{}.{payload}.", part(serde_json::json!({"alg": "none"})));
        assert_eq!(refused(&real, &none), "malformed token");
        let hs = format!(
            "{}.{payload}.{sig}",
            part(serde_json::json!({"alg": "HS256", "kid": "writ-a"}))
        );
        assert_eq!(refused(&real, &hs), "token algorithm not accepted");

        // Expired (no leeway), another issuer, an unknown kid, garbage.
        let expired = real.sign(&claims(-1)).expect("sign");
        assert_eq!(refused(&real, &expired), "token expired");
        let mut other_issuer = claims(900);
        other_issuer.iss = "someone".into();
        let other_issuer = real.sign(&other_issuer).expect("sign");
        assert_eq!(
            refused(&real, &other_issuer),
            "token signature or claims invalid"
        );
        let unknown = keys("writ-b", &SigningKey::random(&mut rand::rngs::OsRng))
            .sign(&c)
            .expect("sign");
        assert_eq!(refused(&real, &unknown), "token signed by an unknown key");
        assert_eq!(refused(&real, "not.a.jwt"), "malformed token");
    }

    #[test]
    fn a_remembered_token_still_expires_and_forgeries_are_never_remembered() {
        let real = keys("writ-a", &SigningKey::random(&mut rand::rngs::OsRng));
        let c = claims(60);
        let token = real.sign(&c).expect("sign");
        assert_eq!(real.verify(&token).expect("verify"), c);
        // Served from memory now, and refused from its exp on, as verification would.
        assert_eq!(real.verify_at(&token, c.exp - 1).expect("remembered"), c);
        match real.verify_at(&token, c.exp) {
            Err(AuthError::InvalidToken(m)) => assert_eq!(m, "token expired"),
            other => panic!("expected expiry, got {other:?}"),
        }
        // Gone once expired: even an earlier clock verifies the signature afresh.
        assert!(
            real.verified
                .get(&Sha256::digest(token.as_bytes()).into(), 0)
                .is_none()
        );

        // A forged token with the remembered one's claims is still refused, every time.
        let (head, rest) = token.split_once('.').expect("header");
        let payload = rest.split_once('.').expect("payload").0;
        let stranger = keys("writ-a", &SigningKey::random(&mut rand::rngs::OsRng));
        let forged_sig = stranger
            .sign(&c)
            .expect("sign")
            .rsplit_once('.')
            .expect("signature")
            .1
            .to_owned();
        let forged = format!("{head}.{payload}.{forged_sig}");
        for _ in 0..2 {
            assert_eq!(refused(&real, &forged), "token signature or claims invalid");
        }

        // A full cache keeps working.
        for _ in 0..VERIFIED_TOKENS + 10 {
            let t = real.sign(&claims(60)).expect("sign");
            real.verify(&t).expect("verify");
        }
        assert!(real.verified.0.lock().expect("lock").len() <= VERIFIED_TOKENS);
        assert_eq!(real.verify(&token).expect("verify"), c);
    }
}
