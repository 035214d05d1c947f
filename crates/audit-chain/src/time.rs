//! The one timestamp spelling of the format: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds).
//! One spelling per instant keeps hashes stable and lets timestamps compare as strings.

/// Milliseconds since 1970-01-01T00:00:00.000Z, or `None` if `text` is not exactly
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` with a real calendar date.
pub fn parse_timestamp_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 {
        return None;
    }
    let shape_ok = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b'T',
        13 | 16 => *c == b':',
        19 => *c == b'.',
        23 => *c == b'Z',
        _ => c.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    let num = |from: usize, to: usize| -> i64 {
        b[from..to]
            .iter()
            .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
    let (hour, minute, second, millis) = (num(11, 13), num(14, 16), num(17, 19), num(20, 23));
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Whether `text` is a timestamp in the format's one spelling.
pub fn is_valid_timestamp(text: &str) -> bool {
    parse_timestamp_millis(text).is_some()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_one_spelling() {
        assert_eq!(parse_timestamp_millis("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_timestamp_millis("2026-11-23T15:04:05.123Z"),
            Some(1_795_446_245_123)
        );
        assert_eq!(
            parse_timestamp_millis("2024-02-29T00:00:00.000Z"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "2026-11-23T15:04:05Z",
            "2026-11-23T15:04:05.123+00:00",
            "2026-11-23 15:04:05.123Z",
            "2026-11-23T15:04:05.1234Z",
            "2026-02-29T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-11-23T24:00:00.000Z",
            "2026-11-23T15:04:60.000Z",
            "2026-11-23t15:04:05.123z",
            "",
            "２026-11-23T15:04:05.123Z",
        ] {
            assert!(!is_valid_timestamp(bad), "{bad}");
        }
    }
}
