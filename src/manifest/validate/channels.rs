//! Where alerts are delivered: `smtp:`, the mail server, and `channels:` (email, DingTalk,
//! webhook, Slack).

use std::collections::HashMap;

use super::targets::check_target_address;
use super::values::check_url;
use crate::manifest::reader::Reader;
use crate::manifest::spec;
use crate::manifest::yaml::Node;
use crate::model::{Channel, ChannelKind, Smtp};

pub(super) fn read_smtp(r: &mut Reader, node: &Node) -> Option<Smtp> {
    let obj = r.object(node, &spec::SMTP)?;
    let smarthost = r.non_empty(&obj, "host").unwrap_or_default();
    if let Some(n) = obj.get("host") {
        if !smarthost.is_empty() && check_target_address(&smarthost).is_err() {
            r.error(
                n.pos,
                format!("`host` must be `host:port`, found `{smarthost}`"),
                Some("e.g. `smtp.example.com:587`".into()),
            );
        }
    }
    let from = r.non_empty(&obj, "from").unwrap_or_default();
    if let Some(n) = obj.get("from") {
        if !from.is_empty() && !looks_like_email(&from) {
            r.error(
                n.pos,
                format!("`from` is not an email address: `{from}`"),
                None,
            );
        }
    }
    let username = r.opt_string(&obj, "user").filter(|s| !s.is_empty());
    let password = r.opt_string(&obj, "password").filter(|s| !s.is_empty());
    // Port 465 is implicit TLS (the connection is encrypted from the start and offers no
    // STARTTLS); everywhere else STARTTLS is required unless the manifest says otherwise.
    let require_tls = r.opt_bool(&obj, "require_tls", !smarthost.ends_with(":465"));
    Some(Smtp {
        smarthost,
        from,
        username,
        password,
        require_tls,
    })
}

fn looks_like_email(text: &str) -> bool {
    let addr = text
        .rsplit_once('<')
        .map_or(text, |(_, a)| a.trim_end_matches('>'));
    matches!(addr.split_once('@'), Some((user, domain)) if !user.is_empty() && !domain.is_empty() && !addr.contains(char::is_whitespace))
}

pub(super) fn read_channels(r: &mut Reader, node: &Node, has_smtp: bool) -> Vec<Channel> {
    let mut channels = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in r.list(node, "channels") {
        let Some(obj) = r.object(item, &spec::CHANNEL) else {
            continue;
        };
        let name = r.non_empty(&obj, "name").unwrap_or_default();
        if let Some(n) = obj.get("name") {
            if !name.is_empty() {
                let valid = name.len() <= 40
                    && name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
                    && name.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    });
                if !valid {
                    r.error(
                        n.pos,
                        format!("invalid channel name `{name}`"),
                        Some("use lower-case letters, digits, `-` and `_` (at most 40)".into()),
                    );
                } else if name.starts_with("monstack") {
                    r.error(
                        n.pos,
                        format!("channel name `{name}` is reserved"),
                        Some("names starting with `monstack` are used by the stack itself".into()),
                    );
                } else if let Some(line) = seen.get(&name) {
                    r.error(
                        n.pos,
                        format!("duplicate channel name `{name}`"),
                        Some(format!("`{name}` is already defined at line {line}")),
                    );
                } else {
                    seen.insert(name.clone(), n.pos.line);
                }
            }
        }
        let kinds: Vec<&str> = spec::CHANNEL_KINDS
            .into_iter()
            .filter(|k| obj.key_pos(k).is_some())
            .collect();
        if kinds.len() != 1 {
            let (message, pos) = if kinds.is_empty() {
                (format!("channel `{name}` has no kind"), obj.pos())
            } else {
                (
                    format!(
                        "channel `{name}` has {} kinds ({}); a channel has exactly one",
                        kinds.len(),
                        kinds.join(", ")
                    ),
                    obj.key_pos(kinds[1]).unwrap(),
                )
            };
            r.error(
                pos,
                message,
                Some(format!(
                    "add one of: {}; make one channel per destination",
                    spec::CHANNEL_KINDS.join(", ")
                )),
            );
            continue;
        }
        let kind_key = kinds[0];
        let send_resolved = r.opt_bool(&obj, "send_resolved", true);
        let Some(kind_node) = obj.get(kind_key) else {
            r.error(
                obj.key_pos(kind_key).unwrap(),
                format!("`{kind_key}` needs its settings"),
                Some(format!("e.g. `{kind_key}: {{url: ...}}`")),
            );
            continue;
        };
        let kind = match kind_key {
            "email" => {
                let Some(e) = r.object(kind_node, &spec::EMAIL) else {
                    continue;
                };
                if !has_smtp {
                    r.error(obj.key_pos("email").unwrap(), format!("email channel `{name}` needs an SMTP server, and there is no `smtp` section"), Some("add `smtp: {host: smtp.example.com:587, from: alerts@example.com, user: ..., password: ${SMTP_PASSWORD}}`".into()));
                }
                let mut to = Vec::new();
                if let Some(list) = e.get("to") {
                    let addresses = r.string_list(list, "to").unwrap_or_default();
                    if addresses.is_empty() {
                        r.error(
                            list.pos,
                            "`to` is empty",
                            Some("list at least one address".into()),
                        );
                    }
                    for (addr, pos) in addresses {
                        if !looks_like_email(&addr) {
                            r.error(pos, format!("`{addr}` is not an email address"), None);
                        }
                        to.push(addr);
                    }
                }
                ChannelKind::Email { to }
            }
            "dingtalk" => {
                let Some(e) = r.object(kind_node, &spec::DINGTALK) else {
                    continue;
                };
                let url = e
                    .get("url")
                    .map(|n| check_url(r, n, "url"))
                    .unwrap_or_default();
                let secret = r.opt_string(&e, "secret").filter(|s| !s.is_empty());
                let keyword = r.opt_string(&e, "keyword").filter(|s| !s.is_empty());
                let at_mobiles = e
                    .get("at_mobiles")
                    .and_then(|n| r.string_list(n, "at_mobiles"))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect();
                let at_all = r.opt_bool(&e, "at_all", false);
                ChannelKind::DingTalk {
                    url,
                    secret,
                    keyword,
                    at_mobiles,
                    at_all,
                }
            }
            "webhook" => {
                let Some(e) = r.object(kind_node, &spec::WEBHOOK) else {
                    continue;
                };
                let url = e
                    .get("url")
                    .map(|n| check_url(r, n, "url"))
                    .unwrap_or_default();
                let max_alerts = e
                    .get("max_alerts")
                    .and_then(|n| r.int(n, "max_alerts", 0, 100_000))
                    .unwrap_or(0) as u32;
                ChannelKind::Webhook { url, max_alerts }
            }
            _ => {
                let Some(e) = r.object(kind_node, &spec::SLACK) else {
                    continue;
                };
                let url = e
                    .get("url")
                    .map(|n| check_url(r, n, "url"))
                    .unwrap_or_default();
                let channel = r.opt_string(&e, "channel").filter(|s| !s.is_empty());
                let username = r.opt_string(&e, "username").filter(|s| !s.is_empty());
                ChannelKind::Slack {
                    url,
                    channel,
                    username,
                }
            }
        };
        channels.push(Channel {
            name,
            send_resolved,
            kind,
        });
    }
    channels
}

#[cfg(test)]
mod tests {
    use super::looks_like_email;

    #[test]
    fn an_email_address_has_a_user_and_a_domain_and_may_have_a_display_name() {
        for text in ["alerts@example.com", "Alerts <alerts@example.com>"] {
            assert!(looks_like_email(text), "{text}");
        }
        for text in [
            "alerts",
            "@example.com",
            "alerts@",
            "a b@example.com",
            "Alerts <nobody>",
        ] {
            assert!(!looks_like_email(text), "{text}");
        }
    }
}
