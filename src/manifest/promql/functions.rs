//! Which functions Prometheus 3.5 has. promql-parser 0.11 knows a newer and larger set, so its
//! "unknown function" check is not enough: this module lists what 3.5 lacks, what it has only
//! behind `--enable-feature=promql-experimental-functions` (which monstack does not set), and the
//! names a misspelling is compared against for "did you mean".

/// Functions promql-parser knows that Prometheus 3.5 does not have at all. (`start`/`end` are
/// `@` modifier keywords in 3.5, so `start()` is a syntax error there.)
pub(super) const NOT_IN_3_5: &[&str] = &[
    "first_over_time",
    "ts_of_first_over_time",
    "histogram_quantiles",
    "integral",
    "min_of",
    "max_of",
    "range",
    "start",
    "end",
    "step",
    "start_timestamp",
];

/// Functions (and aggregations) that are experimental in 3.5.
pub(super) const EXPERIMENTAL_IN_3_5: &[&str] = &[
    "info",
    "sort_by_label",
    "sort_by_label_desc",
    "double_exponential_smoothing",
    "mad_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "ts_of_last_over_time",
    "limitk",
    "limit_ratio",
];

/// The functions of Prometheus 3.5 that need no feature flag.
pub(super) const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// The aggregation operators of Prometheus 3.5 that need no feature flag.
pub(super) const AGGREGATIONS: &[&str] = &[
    "avg",
    "bottomk",
    "count",
    "count_values",
    "group",
    "max",
    "min",
    "quantile",
    "stddev",
    "stdvar",
    "sum",
    "topk",
];

/// The Prometheus 3.5 function or aggregation closest to `name`, if one is close.
pub(super) fn closest(name: &str) -> Option<&'static str> {
    FUNCTIONS
        .iter()
        .chain(AGGREGATIONS)
        .map(|candidate| (strsim::jaro_winkler(name, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Why a function 3.5 does not offer is missing, and what to use instead, when known.
pub(super) fn replacement(name: &str) -> Option<&'static str> {
    Some(match name {
        "holt_winters" => {
            "holt_winters was renamed double_exponential_smoothing in Prometheus 3, where it is \
             experimental; predict_linear or avg_over_time may do"
        }
        "first_over_time" | "ts_of_first_over_time" => {
            "it arrived after Prometheus 3.5; last_over_time exists"
        }
        "start" | "end" => "start() and end() exist only after `@`, as in `up @ end()`",
        "range" | "step" => "it arrived after Prometheus 3.5; write the duration itself, e.g. 5m",
        "sort_by_label" | "sort_by_label_desc" => "sort the result where it is shown instead",
        "mad_over_time" => "stddev_over_time is the closest stable function",
        "limitk" => "topk or bottomk give a bounded number of series",
        "info" => "join with the info metric instead: `up * on(job, instance) group_left(version) target_info`",
        _ => return None,
    })
}
