//! RFC 8785 (JSON Canonicalization Scheme) over `serde_json::Value`.
//!
//! Why not `serde_jcs`: it gets key order (UTF-16 code units) and number formatting
//! (ECMAScript `Number.prototype.toString`) right, but it turns every integer into an f64 without
//! complaint, so `9007199254740993` and `9007199254740992` canonicalize — and therefore hash —
//! identically. An edited audit entry must never keep its hash, so we refuse integers outside
//! ±(2^53 − 1) instead of rounding them. Everything else follows RFC 8785 §3.2; the tests check
//! the RFC's own examples and compare with `serde_jcs` on random values.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::error::CanonicalError;

/// Largest integer that an IEEE 754 double holds exactly, together with all smaller ones.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Deeper nesting is refused (serde_json's parser stops at 128 too).
pub const MAX_DEPTH: usize = 128;

/// The canonical UTF-8 bytes of `value`.
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// Serializes `value` with serde, then canonicalizes it.
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value =
        serde_json::to_value(value).map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    canonicalize(&value)
}

pub(crate) fn write_value(
    out: &mut Vec<u8>,
    value: &Value,
    depth: usize,
) -> Result<(), CanonicalError> {
    if depth > MAX_DEPTH {
        return Err(CanonicalError::TooDeep(MAX_DEPTH));
    }
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map, depth)?,
    }
    Ok(())
}

pub(crate) fn write_object(
    out: &mut Vec<u8>,
    map: &Map<String, Value>,
    depth: usize,
) -> Result<(), CanonicalError> {
    // RFC 8785 §3.2.3: order by UTF-16 code units, which differs from UTF-8/code point order
    // once a key holds characters above U+FFFF.
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by(|a, b| utf16_cmp(a.0, b.0));
    out.push(b'{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write_value(out, value, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// RFC 8785 §3.2.2.2: only `"`, `\` and C0 controls are escaped; controls with a short form use
/// it, the rest become `\u00xx` in lowercase hex. Everything else is written as UTF-8.
///
/// Works on bytes: every escaped character is ASCII, and no byte of a multi-byte UTF-8 sequence
/// is below 0x80, so runs between escapes are copied whole.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    // Eight bytes at a time up to the first one that needs escaping.
    let clean_prefix = bytes
        .chunks_exact(8)
        .take_while(|chunk| {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            !needs_escape(u64::from_le_bytes(word))
        })
        .count()
        * 8;
    for (i, &b) in bytes.iter().enumerate().skip(clean_prefix) {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(bytes.get(run_start..i).unwrap_or_default());
        run_start = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0f)]);
            }
        }
    }
    out.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    out.push(b'"');
}

/// Whether any byte of `word` is below 0x20, `"` or `\\` (exact: the classic "has a byte less
/// than n" and "has a zero byte" bit tricks never miss one and never report one falsely).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    (below_space | zero_byte(quote) | zero_byte(backslash)) & HIGHS != 0
}

pub(crate) fn write_number(out: &mut Vec<u8>, n: &Number) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INTEGER {
            return Err(CanonicalError::UnsafeInteger(u.to_string()));
        }
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(CanonicalError::UnsafeInteger(i.to_string()));
        }
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(format_es_number(f)?.as_bytes());
    } else {
        return Err(CanonicalError::NonFinite(n.to_string()));
    }
    Ok(())
}

/// ECMAScript `Number.prototype.toString` for a finite double (ECMA-262 Number::toString),
/// which RFC 8785 §3.2.2.3 prescribes. Rust's `{:e}` already yields the shortest digit string
/// that round-trips (the `k` digits of the ECMAScript algorithm); only the layout differs.
pub fn format_es_number(value: f64) -> Result<String, CanonicalError> {
    if !value.is_finite() {
        return Err(CanonicalError::NonFinite(value.to_string()));
    }
    if value == 0.0 {
        // Both +0 and -0.
        return Ok("0".to_owned());
    }
    let sign = if value < 0.0 { "-" } else { "" };
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .ok_or_else(|| CanonicalError::NonFinite(scientific.clone()))?;
    let exponent: i32 = exponent
        .parse()
        .map_err(|_| CanonicalError::NonFinite(scientific.clone()))?;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // value = 0.d1d2…dk × 10^n
    let n = exponent + 1;
    let digits = prefer_even_on_tie(digits, n, value.abs());
    let k = digits.len() as i32;

    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int_part, frac_part) = digits.split_at(n as usize);
        format!("{int_part}.{frac_part}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{e_sign}{}", e.unsigned_abs())
        } else {
            format!("{first}.{rest}e{e_sign}{}", e.unsigned_abs())
        }
    };
    Ok(format!("{sign}{body}"))
}

/// ECMAScript breaks a tie between two equally close shortest digit strings towards the even
/// one; Rust's shortest formatting does not promise that. A tie needs the double's exact decimal
/// expansion to be the shortest digits plus a final 5, which we check exactly.
fn prefer_even_on_tie(digits: String, n: i32, abs: f64) -> String {
    let k = digits.len();
    // 1074 fractional digits hold any double's expansion exactly (2^-1074 is the smallest).
    let exact = format!("{abs:.1074}");
    let (int_part, frac_part) = exact.split_once('.').unwrap_or((exact.as_str(), ""));
    let all = format!("{int_part}{frac_part}");
    let leading_zeros = all.bytes().take_while(|b| *b == b'0').count();
    let n_exact = int_part.len() as i32 - leading_zeros as i32;
    let significant = all.get(leading_zeros..).unwrap_or("").trim_end_matches('0');
    if n_exact != n || significant.len() != k + 1 || !significant.ends_with('5') {
        return digits;
    }
    let Some(Ok(lo)) = significant.get(..k).map(str::parse::<u64>) else {
        return digits;
    };
    let even = if lo % 2 == 0 { lo } else { lo + 1 };
    let even = even.to_string();
    // The even neighbour must keep k digits and still read back as the same double.
    let round_trips = format!("0.{even}e{n}")
        .parse::<f64>()
        .is_ok_and(|v| v == abs);
    if even.len() == k && round_trips {
        even
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(canonicalize(v).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_section_3_2_2_example() {
        // RFC 8785 §3.2.2, the "numbers / string / literals" example.
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            canon(&v),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc8785_section_3_2_3_sorting_example() {
        // RFC 8785 §3.2.3: keys sorted by UTF-16 code units (the emoji, a surrogate pair, sorts
        // before U+FB33).
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                        \"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
                        \"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canon(&v), expected);
    }

    #[test]
    fn rfc8785_appendix_b_numbers() {
        // RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in cases {
            let f = f64::from_bits(*bits);
            assert_eq!(format_es_number(f).unwrap(), *expected, "bits {bits:#018x}");
        }
        assert!(format_es_number(f64::NAN).is_err());
        assert!(format_es_number(f64::INFINITY).is_err());
    }

    #[test]
    fn refuses_integers_that_a_double_cannot_hold() {
        assert_eq!(canon(&json!(9007199254740991u64)), "9007199254740991");
        assert_eq!(canon(&json!(-9007199254740991i64)), "-9007199254740991");
        assert!(matches!(
            canonicalize(&json!(9007199254740992u64)),
            Err(CanonicalError::UnsafeInteger(_))
        ));
        assert!(matches!(
            canonicalize(&json!({"a": [i64::MIN]})),
            Err(CanonicalError::UnsafeInteger(_))
        ));
    }

    #[test]
    fn escapes_exactly_the_c0_controls_quote_and_backslash() {
        let s: String =
            (0u32..0x30).filter_map(char::from_u32).collect::<String>() + "\u{7f}\u{2028}é";
        let expected = concat!(
            r#""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#,
            r#"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"#,
            " !\\\"#$%&'()*+,-./\u{7f}\u{2028}é\""
        );
        assert_eq!(canon(&Value::String(s)), expected);
    }

    /// The word-at-a-time escaping against the rule applied one character at a time, with every
    /// special character at every position of long strings.
    #[test]
    fn string_escaping_matches_the_char_by_char_rule() {
        fn reference(s: &str) -> Vec<u8> {
            let mut out = vec![b'"'];
            for c in s.chars() {
                match c {
                    '"' => out.extend_from_slice(b"\\\""),
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '\u{08}' => out.extend_from_slice(b"\\b"),
                    '\t' => out.extend_from_slice(b"\\t"),
                    '\n' => out.extend_from_slice(b"\\n"),
                    '\u{0c}' => out.extend_from_slice(b"\\f"),
                    '\r' => out.extend_from_slice(b"\\r"),
                    c if (c as u32) < 0x20 => {
                        out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                    }
                    c => out.extend_from_slice(c.to_string().as_bytes()),
                }
            }
            out.push(b'"');
            out
        }
        let specials = [
            '"', '\\', '\u{0}', '\u{1f}', '\n', '\u{7f}', ' ', '!', '#', '[', ']', 'é', '😀',
        ];
        for len in 0..40 {
            for pos in 0..len.max(1) {
                for special in specials {
                    let s: String = (0..len)
                        .map(|i| {
                            if i == pos {
                                special
                            } else {
                                (b'a' + (i % 26) as u8) as char
                            }
                        })
                        .collect();
                    let mut out = Vec::new();
                    write_string(&mut out, &s);
                    assert_eq!(out, reference(&s), "{s:?}");
                }
            }
        }
        // Bytes just around the escaped ranges, in every lane of a word.
        for b in 0u8..=0x7f {
            let s: String = std::iter::repeat_n(b as char, 17).collect();
            let mut out = Vec::new();
            write_string(&mut out, &s);
            assert_eq!(out, reference(&s), "byte {b:#x}");
        }
    }

    #[test]
    fn refuses_runaway_nesting() {
        let mut v = json!(1);
        for _ in 0..(MAX_DEPTH + 5) {
            v = json!([v]);
        }
        assert_eq!(canonicalize(&v), Err(CanonicalError::TooDeep(MAX_DEPTH)));
    }

    /// Random JSON within the safe-integer range, compared with serde_jcs (ryu-js numbers).
    #[test]
    fn agrees_with_serde_jcs_on_random_values() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        fn random_string(rng: &mut StdRng) -> String {
            let pool = [
                'a',
                'Z',
                '0',
                '"',
                '\\',
                '\n',
                '\u{1}',
                '\u{7f}',
                'é',
                '€',
                '\u{ffff}',
                '😀',
                '\u{10000}',
                ' ',
            ];
            let len = rng.gen_range(0..6);
            (0..len)
                .map(|_| pool[rng.gen_range(0..pool.len())])
                .collect()
        }
        fn random_value(rng: &mut StdRng, depth: u32) -> Value {
            match rng.gen_range(0..if depth > 3 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(rng.r#gen()),
                2 => json!(rng.gen_range(-(MAX_SAFE_INTEGER as i64)..=(MAX_SAFE_INTEGER as i64))),
                3 => {
                    let f = f64::from_bits(rng.r#gen());
                    if f.is_finite() {
                        json!(f)
                    } else {
                        json!(rng.r#gen::<f64>() * 1e-3)
                    }
                }
                4 => Value::String(random_string(rng)),
                5 => Value::Array(
                    (0..rng.gen_range(0..4))
                        .map(|_| random_value(rng, depth + 1))
                        .collect(),
                ),
                _ => Value::Object(
                    (0..rng.gen_range(0..5))
                        .map(|_| (random_string(rng), random_value(rng, depth + 1)))
                        .collect(),
                ),
            }
        }

        let mut rng = StdRng::seed_from_u64(8785);
        for _ in 0..5000 {
            let v = random_value(&mut rng, 0);
            let ours = canonicalize(&v).unwrap();
            let theirs = serde_jcs::to_vec(&v).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "value {v:?}"
            );
        }
        for _ in 0..100_000 {
            let f = f64::from_bits(rng.r#gen());
            if f.is_finite() {
                let theirs = serde_jcs::to_string(&f).unwrap();
                assert_eq!(
                    format_es_number(f).unwrap(),
                    theirs,
                    "bits {:#x}",
                    f.to_bits()
                );
            }
        }
    }
}
