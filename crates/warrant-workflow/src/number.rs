//! Per-agency warrant numbers, `W-<year>-<6 digits>` (`W-2026-000847`). The counter lives in the
//! database (one per agency and year); this module formats and parses the number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub const MAX_SEQUENCE: u32 = 999_999;

/// A warrant number: the year and the agency's running count in that year (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WarrantNumber {
    year: u16,
    sequence: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the year must have four digits (1000 to 9999), not {0}")]
    Year(i64),
    /// The agency has numbered 999,999 warrants this year: six digits are all the format has.
    #[error("the sequence must be from 1 to {MAX_SEQUENCE}, not {0}")]
    Sequence(i64),
    #[error("{0:?} is not a warrant number like W-2026-000847")]
    Format(String),
}

impl WarrantNumber {
    pub fn new(year: i32, sequence: u32) -> Result<Self, NumberError> {
        let year = u16::try_from(year)
            .ok()
            .filter(|y| (1000..=9999).contains(y))
            .ok_or(NumberError::Year(i64::from(year)))?;
        if !(1..=MAX_SEQUENCE).contains(&sequence) {
            return Err(NumberError::Sequence(i64::from(sequence)));
        }
        Ok(Self { year, sequence })
    }

    pub fn year(self) -> i32 {
        i32::from(self.year)
    }

    pub fn sequence(self) -> u32 {
        self.sequence
    }
}

impl fmt::Display for WarrantNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "W-{:04}-{:06}", self.year, self.sequence)
    }
}

impl FromStr for WarrantNumber {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, NumberError> {
        let bad = || NumberError::Format(s.chars().take(40).collect());
        let rest = s.strip_prefix("W-").ok_or_else(bad)?;
        let (year, seq) = rest.split_once('-').ok_or_else(bad)?;
        let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(seq, 6) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let seq: u32 = seq.parse().map_err(|_| bad())?;
        WarrantNumber::new(year, seq)
    }
}

impl TryFrom<String> for WarrantNumber {
    type Error = NumberError;
    fn try_from(s: String) -> Result<Self, NumberError> {
        s.parse()
    }
}

impl From<WarrantNumber> for String {
    fn from(n: WarrantNumber) -> String {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_six_digits() {
        assert_eq!(
            WarrantNumber::new(2026, 847).unwrap().to_string(),
            "W-2026-000847"
        );
        assert_eq!(
            WarrantNumber::new(2026, 1).unwrap().to_string(),
            "W-2026-000001"
        );
        assert_eq!(
            WarrantNumber::new(2026, MAX_SEQUENCE).unwrap().to_string(),
            "W-2026-999999"
        );
    }

    #[test]
    fn parses_what_it_formats() {
        let n: WarrantNumber = "W-2026-000847".parse().unwrap();
        assert_eq!((n.year(), n.sequence()), (2026, 847));
        assert_eq!(n.to_string().parse::<WarrantNumber>(), Ok(n));
    }

    #[test]
    fn refuses_anything_else() {
        for s in [
            "",
            "W-2026-847",
            "W-2026-0000847",
            "w-2026-000847",
            "W-26-000847",
            "W-2026-000000",
            "W-0999-000001",
            "W-2026-00084a",
            "W-2026-+00847",
            "W 2026 000847",
            "W-2026-000847 ",
            "X-2026-000847",
        ] {
            assert!(s.parse::<WarrantNumber>().is_err(), "{s:?}");
        }
    }

    #[test]
    fn refuses_out_of_range_parts() {
        assert_eq!(WarrantNumber::new(2026, 0), Err(NumberError::Sequence(0)));
        assert_eq!(
            WarrantNumber::new(2026, 1_000_000),
            Err(NumberError::Sequence(1_000_000))
        );
        assert_eq!(WarrantNumber::new(999, 1), Err(NumberError::Year(999)));
        assert_eq!(
            WarrantNumber::new(10_000, 1),
            Err(NumberError::Year(10_000))
        );
        assert_eq!(WarrantNumber::new(-1, 1), Err(NumberError::Year(-1)));
    }

    #[test]
    fn numbers_order_by_year_then_sequence() {
        let a = WarrantNumber::new(2025, 999_999).unwrap();
        let b = WarrantNumber::new(2026, 1).unwrap();
        assert!(a < b);
    }

    #[test]
    fn serde_is_the_string_form() {
        let n = WarrantNumber::new(2026, 847).unwrap();
        assert_eq!(
            serde_json::to_value(n).unwrap(),
            serde_json::json!("W-2026-000847")
        );
        assert_eq!(
            serde_json::from_value::<WarrantNumber>(serde_json::json!("W-2026-000847")).unwrap(),
            n
        );
        assert!(serde_json::from_value::<WarrantNumber>(serde_json::json!("W-2026-0")).is_err());
    }
}
