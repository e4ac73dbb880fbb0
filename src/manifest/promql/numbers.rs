//! Numbers and durations as Prometheus 3.5's lexer reads them (Go's `strconv.ParseFloat` and
//! `ParseInt`, `model.ParseDuration`), where the crate reads them differently: it rejects `1_000`
//! and `0e0`, and accepts `1e400`, `up[0]`, `up[293y]` and `up @ 1e20`.

/// Where a number stands, which decides its limits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Place {
    Plain,
    /// Right after `offset` (possibly after a sign).
    Offset,
    /// Right after `@` (possibly after a sign).
    At,
    /// Inside `[...]`: a range or subquery step.
    Range,
}

/// Go's `time.Duration` maximum (2^63 - 1 ns) in seconds: about 292 years.
pub(super) const MAX_DURATION_SECS: f64 = 9_223_372_036.854_776;
/// `@` timestamps must be below 2^63 seconds.
const MAX_AT_SECS: f64 = 9_223_372_036_854_775_808.0;

/// A problem with one number token; the scanner adds the position.
pub(super) struct NumberProblem {
    pub message: String,
    pub hint: Option<String>,
}

fn problem(message: String, hint: Option<&str>) -> NumberProblem {
    NumberProblem {
        message,
        hint: hint.map(str::to_string),
    }
}

/// The end of the number-or-duration token starting at `i` (`chars[i]` is a digit, or a `.`
/// before one).
pub(super) fn token_end(chars: &[char], i: usize) -> usize {
    let hex = chars[i] == '0' && matches!(chars.get(i + 1), Some('x' | 'X'));
    let mut j = i;
    while j < chars.len() {
        let c = chars[j];
        let exponent_sign = !hex
            && (c == '+' || c == '-')
            && j > i
            && matches!(chars[j - 1], 'e' | 'E')
            && chars.get(j + 1).is_some_and(char::is_ascii_digit)
            && chars[i..j - 1]
                .iter()
                .all(|d| d.is_ascii_digit() || *d == '.' || *d == '_');
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || exponent_sign) {
            break;
        }
        j += 1;
    }
    j
}

/// Seconds in a Prometheus duration (`1h30m`, `5m`, `100ms`), `None` if `token` is not one. The
/// unit order is left to the crate, which checks it.
pub(super) fn duration_secs(token: &str) -> Option<f64> {
    let bytes = token.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: f64 = token[start..i].parse().ok()?;
        let unit = if token[i..].starts_with("ms") {
            i += 1;
            0.001
        } else {
            match bytes.get(i)? {
                b's' => 1.0,
                b'm' => 60.0,
                b'h' => 3600.0,
                b'd' => 86_400.0,
                b'w' => 604_800.0,
                b'y' => 31_536_000.0,
                _ => return None,
            }
        };
        i += 1;
        total += n * unit;
    }
    (!token.is_empty()).then_some(total)
}

/// Go's `strconv` `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = (b[1] | 0x20) == b'x';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// `[0-9][0-9_]*(\.[0-9_]*)?` or `\.[0-9][0-9_]*`, then an optional exponent.
fn is_decimal(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && (b[*i].is_ascii_digit() || b[*i] == b'_') {
            *i += 1;
        }
        *i > start
    };
    let mut i = 0;
    if b.first() == Some(&b'.') {
        i = 1;
        if !b.get(1).is_some_and(u8::is_ascii_digit) {
            return false;
        }
        digits(&mut i);
    } else {
        if !b.first().is_some_and(u8::is_ascii_digit) {
            return false;
        }
        digits(&mut i);
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

fn is_hex(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() > 2
        && b[0] == b'0'
        && matches!(b[1], b'x' | b'X')
        && b[2..].iter().all(|c| c.is_ascii_hexdigit() || *c == b'_')
}

const DURATION_HINT: &str = "durations are whole numbers with units ms, s, m, h, d, w, y in that \
order (5m, 1h30m); Prometheus durations end at about 292 years";

/// Checks a number or duration token at `place`. `Ok(Some(text))` when the crate needs `text`
/// instead to read it as Prometheus does.
pub(super) fn check(token: &str, place: Place) -> Result<Option<String>, NumberProblem> {
    let hex =
        token.len() > 1 && token.starts_with('0') && matches!(token.as_bytes()[1], b'x' | b'X');
    if !(if hex {
        is_hex(token)
    } else {
        is_decimal(token)
    }) {
        // A duration, or junk the crate rejects itself.
        if duration_secs(token).is_some_and(|secs| secs > MAX_DURATION_SECS) {
            return Err(problem(
                format!("duration `{token}` is out of range"),
                Some(DURATION_HINT),
            ));
        }
        return Ok(None);
    }
    let mut rewrite = None;
    let mut t = token.to_string();
    if t.contains('_') {
        if !underscores_ok(&t) {
            return Err(problem(
                format!("bad number `{token}`"),
                Some("underscores may only separate digits, as in 1_000_000"),
            ));
        }
        t = t.replace('_', "");
        rewrite = Some(t.clone());
    }
    let value = if hex {
        u128::from_str_radix(&t[2..], 16)
            .map(|v| v as f64)
            .unwrap_or(f64::INFINITY)
    } else if t.len() > 1 && t.starts_with('0') && t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        // Go reads `017` as octal.
        u128::from_str_radix(&t[1..], 8)
            .map(|v| v as f64)
            .unwrap_or(f64::INFINITY)
    } else {
        let v: f64 = t
            .parse()
            .map_err(|_| problem(format!("bad number `{token}`"), None))?;
        if v.is_infinite() {
            return Err(problem(
                format!("number `{token}` is out of range"),
                Some(
                    "numbers must fit a 64-bit float (up to about 1.8e308); write Inf for infinity",
                ),
            ));
        }
        // The crate reads "0e0" and "01e3" as octal integers; Go parses them as floats.
        if t.starts_with('0') && t.len() > 1 && !t.contains('.') && !t.contains(['8', '9']) {
            rewrite = Some(format!("{v:?}"));
        }
        v
    };
    match place {
        Place::Range if value == 0.0 => Err(problem(
            format!("range `[{token}]` must be greater than 0"),
            None,
        )),
        Place::Range | Place::Offset if value > MAX_DURATION_SECS => Err(problem(
            format!("duration `{token}` is out of range"),
            Some(DURATION_HINT),
        )),
        Place::At if value >= MAX_AT_SECS => Err(problem(
            format!("`@` timestamp `{token}` is out of range"),
            Some("`@` takes a Unix time in seconds, below 2^63"),
        )),
        _ => Ok(rewrite),
    }
}
