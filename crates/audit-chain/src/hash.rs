//! The 32-byte SHA-256 value used everywhere in the format, and its two text renderings:
//! `sha256:<lowercase hex>` in entries and certificates (readable next to `sha256sum` output),
//! standard base64 in Merkle proofs and checkpoints (what RFC 9162 and C2SP implementations use).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::HashParseError;

/// Prefix of the hex rendering.
pub const HASH_PREFIX: &str = "sha256:";

/// A SHA-256 value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Hash {
        Hash(Sha256::digest(data).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Exactly 32 raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Hash, HashParseError> {
        <[u8; 32]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| HashParseError::Length(bytes.len()))
    }

    /// `sha256:` followed by 64 lowercase hex digits; nothing else is accepted, so that one hash
    /// has exactly one spelling (entries are hashed as text).
    pub fn from_prefixed(text: &str) -> Result<Hash, HashParseError> {
        let hex_part = text
            .strip_prefix(HASH_PREFIX)
            .ok_or(HashParseError::MissingPrefix)?;
        Hash::from_hex(hex_part)
    }

    /// 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Result<Hash, HashParseError> {
        /// The value of each lowercase hex digit; 0xff for every other byte.
        const NIBBLE: [u8; 256] = {
            let mut table = [0xffu8; 256];
            let mut i = 0;
            while i < 10 {
                table[b'0' as usize + i] = i as u8;
                i += 1;
            }
            let mut i = 0;
            while i < 6 {
                table[b'a' as usize + i] = 10 + i as u8;
                i += 1;
            }
            table
        };
        if text.len() != 64 {
            return Err(HashParseError::Hex);
        }
        let mut out = [0u8; 32];
        // Any byte that is not a digit sets high bits in `bad`; checked once at the end.
        let mut bad = 0u8;
        for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            if let [hi, lo] = pair {
                let (hi, lo) = (NIBBLE[usize::from(*hi)], NIBBLE[usize::from(*lo)]);
                bad |= hi | lo;
                *byte = (hi << 4) | lo;
            }
        }
        if bad & 0xf0 != 0 {
            return Err(HashParseError::Hex);
        }
        Ok(Hash(out))
    }

    /// Standard base64 (RFC 4648 §4, padded) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Hash, HashParseError> {
        let bytes = BASE64
            .decode(text.as_bytes())
            .map_err(|_| HashParseError::Base64)?;
        let hash = Hash::from_slice(&bytes)?;
        // Reject non-canonical encodings (stray low bits in the last character) so that the
        // text form of a hash is unique.
        if hash.to_base64() != text {
            return Err(HashParseError::Base64);
        }
        Ok(hash)
    }

    /// `sha256:<hex>`.
    pub fn to_prefixed(&self) -> String {
        format!("{HASH_PREFIX}{}", self.to_hex())
    }

    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(64);
        for b in self.0 {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        text
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }
}

impl fmt::Display for Hash {
    /// The `sha256:<hex>` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HASH_PREFIX)?;
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = HashParseError;

    /// The `sha256:<hex>` form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_prefixed(s)
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }
}

/// Serialized as `sha256:<hex>`; use [`base64_hash`] / [`base64_hashes`] for base64 fields.
impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_prefixed())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As `String::deserialize` then `from_prefixed`, without allocating the string.
        struct Prefixed;
        impl serde::de::Visitor<'_> for Prefixed {
            type Value = Hash;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Hash, E> {
                Hash::from_prefixed(text).map_err(E::custom)
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Hash, E> {
                match std::str::from_utf8(bytes) {
                    Ok(text) => self.visit_str(text),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(bytes), &self)),
                }
            }
        }
        deserializer.deserialize_string(Prefixed)
    }
}

/// `#[serde(with = "base64_hash")]` for a [`Hash`] rendered as base64.
pub mod base64_hash {
    use super::*;

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hash.to_base64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(deserializer)?;
        Hash::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "base64_hashes")]` for a list of [`Hash`]es rendered as base64.
pub mod base64_hashes {
    use super::*;
    use serde::ser::SerializeSeq;

    pub fn serialize<S: Serializer>(hashes: &[Hash], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(hashes.len()))?;
        for hash in hashes {
            seq.serialize_element(&hash.to_base64())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Hash>, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        texts
            .iter()
            .map(|text| Hash::from_base64(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// `#[serde(with = "hex_hash")]` for a [`Hash`] rendered as bare lowercase hex (as
/// `sha256sum` prints it).
pub mod hex_hash {
    use super::*;

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hash.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(deserializer)?;
        Hash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_both_forms() {
        let hash = Hash::of(b"abc");
        assert_eq!(
            hash.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Hash::from_prefixed(&hash.to_string()), Ok(hash));
        assert_eq!(Hash::from_base64(&hash.to_base64()), Ok(hash));
    }

    /// Deserializing without the intermediate `String` accepts and refuses exactly what
    /// `String::deserialize` followed by `from_prefixed` did, with the same messages.
    #[test]
    fn deserializes_like_a_string_then_from_prefixed() {
        /// The previous implementation, inside a struct as in an entry (so that serde_json
        /// reports positions).
        #[derive(Deserialize)]
        struct Old {
            #[serde(deserialize_with = "old_hash")]
            h: Hash,
        }
        fn old_hash<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
            let text = String::deserialize(deserializer)?;
            Hash::from_prefixed(&text).map_err(serde::de::Error::custom)
        }
        #[derive(Deserialize)]
        struct New {
            h: Hash,
        }
        let old = |json: &str| {
            serde_json::from_str::<Old>(&format!("{{\"h\": {json}, \"x\": 1}}"))
                .map(|o| o.h)
                .map_err(|e| e.to_string())
        };
        let hex = Hash::of(b"abc").to_hex();
        let cases = [
            format!("\"sha256:{hex}\""),
            format!("\"sha256:\\u0062{}\"", &hex[1..]),
            format!("\"sha256:{}\"", hex.to_uppercase()),
            format!("\"{hex}\""),
            "\"sha256:ab\"".to_owned(),
            "\"\"".to_owned(),
            "5".to_owned(),
            "null".to_owned(),
            "[1]".to_owned(),
        ];
        for json in &cases {
            let new = serde_json::from_str::<New>(&format!("{{\"h\": {json}, \"x\": 1}}"))
                .map(|n| n.h)
                .map_err(|e| e.to_string());
            match (old(json), new) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{json}"),
                (Err(a), Err(b)) => assert_eq!(a, b, "{json}"),
                (a, b) => panic!("{json}: {a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn rejects_other_spellings() {
        let upper = "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        assert!(Hash::from_prefixed(upper).is_err());
        assert!(
            Hash::from_prefixed("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .is_err()
        );
        assert!(Hash::from_prefixed("sha256:ba78").is_err());
        assert!(Hash::from_prefixed("sha256:é").is_err());
        assert!(Hash::from_base64("AAAA").is_err());
        // Same bytes as the canonical "…AAA=" but with non-zero padding bits.
        let canonical = Hash([0; 32]).to_base64();
        let sloppy = format!("{}B=", &canonical[..canonical.len() - 2]);
        assert!(Hash::from_base64(&sloppy).is_err());
    }
}
