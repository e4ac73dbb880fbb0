//! The uids Grafana accepts (dashboards, alert rules, contact point receivers), and the slugs
//! and stable hashes monstack derives names from: the same input gives the same name in every
//! build.

/// Longest uid Grafana accepts (dashboards, alert rules, contact point receivers).
pub const MAX_UID_LEN: usize = 40;

/// Whether Grafana accepts `uid`: 1-40 characters of `[a-zA-Z0-9_-]`.
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_UID_LEN
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A lowercase slug of `text` made of `[a-z0-9_-]`, at most `max_len` characters, with runs of
/// other characters turned into one `-`. Empty when `text` has no ASCII letter or digit.
pub(crate) fn slug(text: &str, max_len: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(max_len);
    out.trim_end_matches('-').to_string()
}

/// A stable 64-bit FNV-1a hash, for names that must be deterministic across builds.
pub(crate) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Ops & Infra", 40), "ops-infra");
        assert_eq!(slug("--a__b--", 40), "a__b");
        assert_eq!(slug("abc def", 4), "abc");
        assert_eq!(slug("监控", 40), "");
    }
}
