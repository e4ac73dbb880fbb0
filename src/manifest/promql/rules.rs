//! Rules on the parsed expression that Prometheus 3.5 enforces and promql-parser 0.11 does not,
//! because the crate follows a newer Prometheus: functions 3.5 lacks or keeps experimental,
//! `limitk`/`limit_ratio`, `fill()` modifiers, `or` between label matchers, and empty label
//! names in `by (...)`/`on (...)` lists.

use promql_parser::parser::{Expr, LabelModifier, VectorMatchCardinality, VectorSelector};

use super::functions::{EXPERIMENTAL_IN_3_5, NOT_IN_3_5};

/// What is wrong; [`super::messages`] words it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Problem {
    /// A function Prometheus 3.5 does not have.
    NotIn35(String),
    /// A function or aggregation 3.5 has only as an experimental feature.
    Experimental(String),
    /// `fill(...)`, `fill_left(...)`, `fill_right(...)` after a binary operator.
    Fill,
    /// `{a="x" or b="y"}`.
    OrMatchers,
    /// `by ("")`, `on ("")`, `group_left ("")`.
    EmptyLabel,
}

fn labels_ok(labels: &[String]) -> Result<(), Problem> {
    if labels.iter().any(String::is_empty) {
        return Err(Problem::EmptyLabel);
    }
    Ok(())
}

fn modifier_ok(modifier: &Option<LabelModifier>) -> Result<(), Problem> {
    match modifier {
        Some(LabelModifier::Include(l)) | Some(LabelModifier::Exclude(l)) => labels_ok(&l.labels),
        None => Ok(()),
    }
}

fn selector_ok(vs: &VectorSelector) -> Result<(), Problem> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(Problem::OrMatchers);
    }
    Ok(())
}

/// Walks the tree with an explicit stack, so a deep tree (a long `a + b + ...`) cannot
/// overflow the thread's stack.
pub(super) fn check(root: &Expr) -> Result<(), Problem> {
    let mut stack: Vec<&Expr> = vec![root];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Aggregate(a) => {
                let op = a.op.to_string();
                if EXPERIMENTAL_IN_3_5.contains(&op.as_str()) {
                    return Err(Problem::Experimental(op));
                }
                modifier_ok(&a.modifier)?;
                if let Some(p) = &a.param {
                    stack.push(p);
                }
                stack.push(&a.expr);
            }
            Expr::Unary(u) => stack.push(&u.expr),
            Expr::Binary(b) => {
                if let Some(m) = &b.modifier {
                    if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                        return Err(Problem::Fill);
                    }
                    modifier_ok(&m.matching)?;
                    if let VectorMatchCardinality::ManyToOne(l)
                    | VectorMatchCardinality::OneToMany(l) = &m.card
                    {
                        labels_ok(&l.labels)?;
                    }
                }
                stack.push(&b.rhs);
                stack.push(&b.lhs);
            }
            Expr::Paren(p) => stack.push(&p.expr),
            Expr::Subquery(s) => stack.push(&s.expr),
            Expr::VectorSelector(vs) => selector_ok(vs)?,
            Expr::MatrixSelector(ms) => selector_ok(&ms.vs)?,
            Expr::Call(c) => {
                let name = c.func.name;
                if NOT_IN_3_5.contains(&name) {
                    return Err(Problem::NotIn35(name.to_string()));
                }
                if EXPERIMENTAL_IN_3_5.contains(&name) {
                    return Err(Problem::Experimental(name.to_string()));
                }
                for a in c.args.args.iter().rev() {
                    stack.push(a);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    Ok(())
}
