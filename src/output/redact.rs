//! Redaction at the edge of every message: nothing monstack prints or logs carries a secret,
//! at any verbosity. Two nets:
//! - the secrets the loaded manifest holds (SMTP and datasource passwords, Grafana's admin
//!   password, webhook and Slack URLs, DingTalk tokens and signing secrets) are registered
//!   when it loads and replaced by `***` wherever they appear;
//! - any URL's password (`user:password@`) and credential-like query parameters (`token`,
//!   `access_token`, `secret`, `sign`, `key`, `password`, ...) are masked, whoever wrote them
//!   (our errors, a service's log line, a third-party crate's debug output).

use std::borrow::Cow;
use std::sync::RwLock;

const MASK: &str = "***";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value: from now on it is masked in every message. Values shorter than
/// four characters are not registered (they would mask ordinary words).
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < 4 {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret and every credential in a URL masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
    }
    if let Some(masked) = redact_urls(&out) {
        out = Cow::Owned(masked);
    }
    match redact_bare_userinfo(&out) {
        Some(masked) => Cow::Owned(masked),
        None => out,
    }
}

/// Masks `user:password@host` written without a scheme (an etcd endpoint or a Consul server
/// the manifest got wrong is echoed in its error before any secret is registered); `None`
/// when there is nothing to mask. Words with `//` were seen by [`redact_urls`].
fn redact_bare_userinfo(text: &str) -> Option<String> {
    let is_edge = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '"' | '\'' | '`' | '<' | '>' | '[' | ']' | ',' | '(' | ')'
            )
    };
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(|c: char| !is_edge(c)).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(is_edge).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = &rest[end..];
        let masked = match (word.contains("//"), word.rsplit_once('@')) {
            // Userinfo holds no `/`, and `name:tag@sha256:...` is an image reference.
            (false, Some((userinfo, host)))
                if !host.is_empty() && !userinfo.contains('/') && !host.starts_with("sha256:") =>
            {
                match userinfo.split_once(':') {
                    Some((user, password)) if !password.is_empty() && password != MASK => {
                        Some(format!("{user}:{MASK}@{host}"))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match masked {
            Some(masked) => {
                changed = true;
                out.push_str(&masked);
            }
            None => out.push_str(word),
        }
    }
    changed.then_some(out)
}

/// Masks `user:password@` userinfo and credential query parameters; `None` when there is
/// nothing to mask.
fn redact_urls(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    // `//`, not `://`: a source excerpt cut short may have lost the scheme (`…//user:pw@host`).
    while let Some(at) = rest.find("//") {
        let (before, after) = rest.split_at(at + 2);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let masked = mask_url(url);
        changed |= masked != url;
        out.push_str(&masked);
        rest = tail;
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// One URL without its scheme (`user:pw@host/path?token=x`).
fn mask_url(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}@{host}"),
            None => format!("{MASK}@{host}"),
        },
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, value))
                        if !value.is_empty()
                            && crate::model::CREDENTIAL_QUERY_PARAMS
                                .contains(&name.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{name}={MASK}")
                    }
                    _ => param.to_string(),
                })
                .collect();
            let mut path = format!("{path}?{}", params.join("&"));
            if let Some(fragment) = fragment {
                path.push('#');
                path.push_str(fragment);
            }
            path
        }
        None => path.to_string(),
    };
    format!("{authority}{path}")
}

/// A writer for the log subscriber that masks before writing to stderr. Each `write` call of
/// the formatter carries whole fields, so secrets are not split between calls.
pub struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        // A closed stderr is not a reason to fail: the message has nowhere to go.
        let _ = std::io::stderr().write_all(redact(&text).as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_masked_anywhere() {
        register("sm7p-Pa55word-x9");
        register("ab");
        assert_eq!(
            redact("env GF_SMTP_PASSWORD=sm7p-Pa55word-x9 set"),
            "env GF_SMTP_PASSWORD=*** set"
        );
        assert_eq!(redact("ab cd"), "ab cd", "too short to register");
    }

    #[test]
    fn url_credentials_are_masked() {
        assert_eq!(
            redact("Post \"https://bot:hunter22@hooks.example/x?token=abc123&team=a\": refused"),
            "Post \"https://bot:***@hooks.example/x?token=***&team=a\": refused"
        );
        assert_eq!(
            redact(
                "https://oapi.dingtalk.com/robot/send?access_token=T0KEN-42&timestamp=1&sign=xyz"
            ),
            "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***"
        );
        assert_eq!(
            redact("http://127.0.0.1:9093/api/v2/alerts and http://x/?q=1#frag"),
            "http://127.0.0.1:9093/api/v2/alerts and http://x/?q=1#frag"
        );
        assert_eq!(redact("no urls here: a=b"), "no urls here: a=b");
        assert_eq!(redact("http://tok@host/"), "http://***@host/");
        // An excerpt cut before the scheme still hides the password.
        assert_eq!(
            redact("  …//bot:hunter22@host:2379"),
            "  …//bot:***@host:2379"
        );
        assert_eq!(redact("a // comment, not a URL"), "a // comment, not a URL");
        // Without a scheme (a manifest's endpoint that lacks one, echoed in its error).
        assert_eq!(
            redact("endpoint `root:hunter22@10.0.0.11:2379` has no scheme"),
            "endpoint `root:***@10.0.0.11:2379` has no scheme"
        );
        assert_eq!(
            redact(" 3 |     endpoints: [\"root:hunter22@10.0.0.11:2379\"]"),
            " 3 |     endpoints: [\"root:***@10.0.0.11:2379\"]"
        );
        // Not userinfo: an address alone, a mail address, a time.
        for plain in [
            "ops@example.com",
            "10.0.0.1:2379",
            "at 12:30 @ home",
            "quay.io/coreos/etcd:v3.5.21@sha256:0123abcd",
            "app:v1@sha256:0123abcd",
            "a:b@",
        ] {
            assert_eq!(redact(plain), plain);
        }
    }
}
