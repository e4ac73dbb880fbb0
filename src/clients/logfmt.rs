//! Log lines in logfmt, as the Prometheus family writes them (`key=value`, `key="quoted"`), and
//! their timestamps: what Alertmanager and Prometheus logged since a moment.

use std::time::{SystemTime, UNIX_EPOCH};

/// The value of `key=` in a logfmt line, unquoted and unescaped.
pub fn logfmt_value(line: &str, key: &str) -> Option<String> {
    let pattern = format!(" {key}=");
    let start = line.find(&pattern)? + pattern.len();
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(value),
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some(other) => value.push(other),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Some(value)
    } else {
        Some(rest.split(' ').next().unwrap_or_default().to_string())
    }
}

/// The log lines written at or after `start` (to the millisecond): `ts=` up to Alertmanager
/// 0.27 and Prometheus 2, `time=` from Alertmanager 0.28 and Prometheus 3, which write it in the
/// process's time zone (`Z` in the images, `+02:00` where TZ says so). Lines without a readable
/// time are left out.
pub fn since(lines: &[String], start: SystemTime) -> Vec<String> {
    let start = start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    lines
        .iter()
        .filter(|line| {
            let line = format!(" {line}");
            logfmt_value(&line, "ts")
                .or_else(|| logfmt_value(&line, "time"))
                .and_then(|time| unix_millis(&time))
                .is_some_and(|time| time >= start)
        })
        .cloned()
        .collect()
}

/// `2006-01-02T15:04:05[.fff...](Z|+hh:mm|-hh:mm)` as milliseconds since the Unix epoch.
pub fn unix_millis(time: &str) -> Option<i64> {
    let b = time.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| digits(time.get(range)?);
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &time[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = first3.parse::<i64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let minutes = digits(rest.get(1..3)?)? * 60 + digits(rest.get(4..6)?)?;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// A run of ASCII digits as a number (no sign, no space).
fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `2024-05-01T10:00:00.000Z` (UTC).
pub fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Times with an offset (Prometheus 3 and Alertmanager 0.28 in a time zone) are the same
    /// instants as in UTC; fractions of any length; garbage is no time.
    #[test]
    fn log_times_are_read_as_instants_whatever_their_zone() {
        let utc = unix_millis("2026-12-01T20:32:28.074Z").unwrap();
        assert_eq!(utc, 1_796_157_148_074);
        assert_eq!(unix_millis("2026-12-01T22:32:28.074+02:00"), Some(utc));
        assert_eq!(unix_millis("2026-12-01T15:02:28.074-05:30"), Some(utc));
        assert_eq!(unix_millis("2026-12-01T20:32:28.074981234Z"), Some(utc));
        assert_eq!(unix_millis("2026-12-01T20:32:28Z"), Some(utc - 74));
        assert_eq!(
            unix_millis("2000-02-29T00:00:00.123Z"),
            Some(951_782_400_123)
        );
        assert_eq!(unix_millis("1970-01-01T00:00:00.000Z"), Some(0));
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T20:32:28.074",
            "2026-13-01T20:32:28Z",
            "2026-12-01T20:32:28.Z",
            "2026-12-01T20:32:28+2:00",
            "x026-12-01T20:32:28Z",
        ] {
            assert_eq!(unix_millis(bad), None, "{bad}");
        }
        // `since` compares instants: a line two hours "later" on the clock face but at +02:00
        // is the same moment.
        let start = UNIX_EPOCH + Duration::from_millis(utc as u64);
        let lines = [
            "time=2026-12-01T22:32:28.074+02:00 level=ERROR msg=now".to_string(),
            "time=2026-12-01T22:32:28.073+02:00 level=ERROR msg=before".to_string(),
        ];
        assert_eq!(since(&lines, start), lines[..1]);
    }

    #[test]
    fn rfc3339_formats_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
    }

    #[test]
    fn lines_before_the_start_are_ignored_with_time_as_with_ts() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_621_140); // 2025-12-01T20:32:20Z
        let later = "time=2026-12-01T20:32:28.074Z level=ERROR msg=x".to_string();
        let earlier = "time=2025-12-01T20:31:58.078Z level=ERROR msg=x".to_string();
        assert_eq!(since(&[earlier, later.clone()], start), [later]);
    }
}
