//! Duplicate object members in a signed JSON document. `serde_json::Value` keeps the last of
//! them, so a file with `"state": "rejected"` before the real `"state"` would canonicalise to
//! what was signed and verify, while a person (or another parser, which may keep the first)
//! reads something else. Every signed document is checked for them before it is read.

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// `Ok` when no object in `bytes` (JSON) names a member twice; else the member's name. Not JSON
/// at all is left to the caller's parser to report.
pub fn check_unique_members(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match Unique.deserialize(&mut de) {
        Ok(()) => Ok(()),
        Err(e) if e.is_data() => Err(e.to_string()),
        Err(_) => Ok(()),
    }
}

/// Walks a value, refusing a member named twice in one object.
#[derive(Clone, Copy)]
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!(
                    "the member {key:?} appears twice in one object"
                )));
            }
            map.next_value_seed(Unique)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_named_twice_anywhere_is_refused() {
        assert!(check_unique_members(br#"{"a":1,"b":[{"c":2,"d":{"e":null}}]}"#).is_ok());
        let twice = check_unique_members(br#"{"a":{"state":"rejected","state":"issued"}}"#);
        assert!(twice.unwrap_err().contains("\"state\" appears twice"));
        assert!(check_unique_members(br#"[{"x":1},{"x":2,"x":3}]"#).is_err());
        // The same name in different objects is fine; escapes name the same member.
        assert!(check_unique_members(br#"{"x":{"x":1},"y":{"x":2}}"#).is_ok());
        assert!(check_unique_members(br#"{"x":1,"\u0078":2}"#).is_err());
        // Not JSON is the caller's parser's to report.
        assert!(check_unique_members(b"{not json").is_ok());
    }
}
