//! Names that end up inside SQL text (schema and role names) are generated here from an agency id
//! and re-validated whenever they are read back, so no input ever reaches SQL unchecked.

use std::fmt;

use uuid::Uuid;

use crate::TenancyError;

/// An agency's schema and role name: `agency_` followed by 16 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgencyIdent(String);

impl AgencyIdent {
    pub fn for_agency(id: Uuid) -> Self {
        Self(format!("agency_{}", &id.simple().to_string()[..16]))
    }

    pub fn parse(s: &str) -> Result<Self, TenancyError> {
        let ok = s.len() == 23
            && s.starts_with("agency_")
            && s[7..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TenancyError::invalid(
                "schema name",
                format!("{s:?} is not agency_<16 hex>"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier double-quoted for SQL text. Safe because of the validated alphabet.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for AgencyIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An agency's short public name, as used on the command line and at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(s: &str) -> Result<Self, TenancyError> {
        let b = s.as_bytes();
        let ok = (3..=40).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b.last() != Some(&b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(TenancyError::invalid(
                "slug",
                "3 to 40 characters: lowercase letters, digits and '-', starting with a letter, not ending with '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_idents_parse_and_hostile_ones_do_not() {
        let id = AgencyIdent::for_agency(Uuid::new_v4());
        assert_eq!(AgencyIdent::parse(id.as_str()).unwrap(), id);
        for bad in [
            "agency_",
            "agency_0123456789abcdeg",
            "x\"; drop table y; --",
            "AGENCY_0123456789abcdef",
            "agency_0123456789abcdef0",
        ] {
            assert!(AgencyIdent::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_are_restricted() {
        assert!(Slug::parse("metro-pd").is_ok());
        for bad in [
            "",
            "ab",
            "Metro",
            "1pd",
            "pd-",
            "a b",
            "pd;drop",
            &"a".repeat(41),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }
}
