//! `${VAR}` and `${VAR:-default}` interpolation in manifest string values.
//!
//! Only the braced form is special, so PromQL and alert templates (`{{ $labels.x }}`,
//! `$value`) pass through untouched. `$${` writes a literal `${`.

/// Looks a variable up; the loader passes the process environment, tests pass a map.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${NAME}` where NAME is not set and there is no default.
    Unset(String),
    /// `${` without a closing `}` or with an invalid name.
    Malformed(String),
}

/// Substitutes every `${...}` in `text`.
/// - `${VAR}`: the value; error when unset.
/// - `${VAR:-default}`: the default when VAR is unset or empty.
/// - `${VAR-default}`: the default only when VAR is unset.
/// - `${VAR:?message}` / `${VAR?message}`: error with the message when unset (or empty).
pub fn interpolate(text: &str, lookup: Lookup) -> Result<String, InterpolationError> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body_start.find('}') else {
            return Err(InterpolationError::Malformed(format!(
                "`${{` without a closing `}}` in `{}`",
                preview(text)
            )));
        };
        let body = &body_start[..end];
        out.push_str(&substitute(body, lookup)?);
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute(body: &str, lookup: Lookup) -> Result<String, InterpolationError> {
    let name_len = body
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    let (name, op) = body.split_at(name_len);
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !valid_name {
        return Err(InterpolationError::Malformed(format!(
            "`${{{body}}}` is not a valid variable reference"
        )));
    }
    let value = lookup(name);
    let (unset, empty) = (value.is_none(), value.as_deref() == Some(""));
    if let Some(default) = op.strip_prefix(":-") {
        return Ok(if unset || empty {
            default.to_string()
        } else {
            value.unwrap_or_default()
        });
    }
    if let Some(default) = op.strip_prefix('-') {
        return Ok(value.unwrap_or_else(|| default.to_string()));
    }
    if let Some(message) = op.strip_prefix(":?") {
        return match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(InterpolationError::Unset(format_required(name, message))),
        };
    }
    if let Some(message) = op.strip_prefix('?') {
        return value.ok_or_else(|| InterpolationError::Unset(format_required(name, message)));
    }
    if !op.is_empty() {
        return Err(InterpolationError::Malformed(format!(
            "`${{{body}}}`: expected `${{{name}}}`, `${{{name}:-default}}` or `${{{name}:?message}}`"
        )));
    }
    value.ok_or_else(|| InterpolationError::Unset(name.to_string()))
}

fn format_required(name: &str, message: &str) -> String {
    if message.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({message})")
    }
}

fn preview(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<String, InterpolationError> {
        interpolate(text, &env)
    }

    #[test]
    fn substitutes_variables_and_defaults() {
        assert_eq!(run("a ${SET} b").unwrap(), "a value b");
        assert_eq!(run("${UNSET:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("${EMPTY-fallback}").unwrap(), "");
        assert_eq!(run("${UNSET-fallback}").unwrap(), "fallback");
        assert_eq!(run("${UNSET:-}").unwrap(), "");
        assert_eq!(run("${SET:-x}${SET}").unwrap(), "valuevalue");
    }

    #[test]
    fn leaves_prometheus_templates_and_escapes_alone() {
        let t = "{{ $labels.instance }} runs {{ $value }} goroutines, cost $5";
        assert_eq!(run(t).unwrap(), t);
        assert_eq!(run("literal $${SET}").unwrap(), "literal ${SET}");
    }

    #[test]
    fn unset_and_malformed_references_are_errors() {
        assert_eq!(
            run("${NOPE}"),
            Err(InterpolationError::Unset("NOPE".into()))
        );
        assert_eq!(
            run("${NOPE:?set it in .env}"),
            Err(InterpolationError::Unset("NOPE (set it in .env)".into()))
        );
        assert!(matches!(
            run("${EMPTY:?}"),
            Err(InterpolationError::Unset(_))
        ));
        assert!(matches!(
            run("${SET"),
            Err(InterpolationError::Malformed(_))
        ));
        assert!(matches!(
            run("${1X}"),
            Err(InterpolationError::Malformed(_))
        ));
        assert!(matches!(
            run("${SET:+x}"),
            Err(InterpolationError::Malformed(_))
        ));
    }
}
