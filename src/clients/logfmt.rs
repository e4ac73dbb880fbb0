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

/// The log lines written at or after `start`. Alertmanager and Prometheus write
/// their time as
/// `2006-01-02T15:04:05.000Z`, like [`rfc3339`], so the strings compare as times: `ts=` up to
/// Alertmanager 0.27 and Prometheus 2, `time=` from Alertmanager 0.28 and Prometheus 3.
pub fn since(lines: &[String], start: SystemTime) -> Vec<String> {
    let start = rfc3339(start);
    lines
        .iter()
        .filter(|line| {
            let line = format!(" {line}");
            logfmt_value(&line, "ts")
                .or_else(|| logfmt_value(&line, "time"))
                .is_some_and(|time| time >= start)
        })
        .cloned()
        .collect()
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
