//! The proof that [`super::check`] agrees with Prometheus 3.5: every expression of
//! `tests/fixtures/promql/corpus.txt` (lines `OK<TAB>expr` or `ERR<TAB>expr`, the verdict of
//! `promtool check rules` 3.5.3) must get its recorded verdict from `check`, and, when the pinned
//! promtool 3.5 is there, from promtool too, so the fixture cannot drift from the real thing.
//! Lines starting with `#` and blank lines are comments.

use std::path::Path;
use std::process::Command;

use crate::testsupport::{pinned, PROMTOOL};

struct Case {
    line: usize,
    ok: bool,
    expr: String,
}

fn corpus() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/promql/corpus.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let (verdict, expr) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("corpus line {}: no tab: {l:?}", i + 1));
            let ok = match verdict {
                "OK" => true,
                "ERR" => false,
                other => panic!("corpus line {}: verdict {other:?} is not OK or ERR", i + 1),
            };
            Case {
                line: i + 1,
                ok,
                expr: expr.to_string(),
            }
        })
        .collect()
}

/// promtool's verdict on each expression: one rule file, one group per expression, so each
/// error names its group.
fn promtool_verdicts(promtool: &Path, cases: &[Case]) -> Vec<Result<(), String>> {
    let groups: Vec<serde_json::Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            serde_json::json!({
                "name": format!("g{}", i + 1),
                "rules": [{"alert": "A", "expr": c.expr}],
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corpus.rules.yml");
    std::fs::write(&file, serde_json::json!({ "groups": groups }).to_string()).unwrap();
    let output = Command::new(promtool)
        .args(["check", "rules", "--lint=none"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", promtool.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut verdicts: Vec<Result<(), String>> = vec![Ok(()); cases.len()];
    for line in report.lines() {
        let Some((_, rest)) = line.split_once("group \"g") else {
            continue;
        };
        let Some((number, message)) = rest.split_once("\", rule 1, \"A\": ") else {
            continue;
        };
        let index: usize = number.parse().expect("group number");
        verdicts[index - 1] = Err(message.to_string());
    }
    let errors = verdicts.iter().filter(|v| v.is_err()).count();
    assert_eq!(
        output.status.success(),
        errors == 0,
        "promtool's exit status ({}) does not fit the {errors} per-rule errors read from its report:\n{report}",
        output.status
    );
    verdicts
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "ERR"
    }
}

#[test]
fn promql_verdicts_match_promtool() {
    let cases = corpus();
    let valid = cases.iter().filter(|c| c.ok).count();
    assert!(
        cases.len() >= 40 && valid >= 10 && cases.len() - valid >= 10,
        "the corpus is too small to prove anything: {} expressions, {valid} valid",
        cases.len()
    );
    let mut wrong = Vec::new();
    for c in &cases {
        let ours = super::check(&c.expr);
        if ours.is_ok() != c.ok {
            let detail = ours.err().map(|e| format!(" ({e})")).unwrap_or_default();
            wrong.push(format!(
                "line {}: recorded {}, check says {}{detail}: {}",
                c.line,
                verdict(c.ok),
                verdict(!c.ok),
                c.expr
            ));
        }
    }
    if let Some(promtool) = pinned(PROMTOOL) {
        for (c, theirs) in cases.iter().zip(promtool_verdicts(&promtool, &cases)) {
            if theirs.is_ok() != c.ok {
                let detail = theirs.err().map(|e| format!(" ({e})")).unwrap_or_default();
                wrong.push(format!(
                    "line {}: recorded {}, promtool 3.5 says {}{detail}: {}",
                    c.line,
                    verdict(c.ok),
                    verdict(!c.ok),
                    c.expr
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} corpus verdicts disagree:\n  {}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );
}
