//! The shape of `prometheus.remote_write:` (where samples are sent) and `prometheus.mode`:
//! its own file because the section is large and has nothing to share with the rest.

use super::{opt, Field, Section, Ty};

/// Vendors whose receive path and tenant header monstack knows.
pub const PRESETS: &[&str] = &["mimir", "thanos", "victoriametrics"];

pub static BASIC_AUTH: Section = Section {
    what: "`basic_auth`",
    doc: "HTTP basic authentication; the password is read from a file, never written in the manifest.",
    fields: &[
        super::req("username", Ty::Str, "Login user."),
        super::req("password_file", Ty::Str, "File holding the password (relative to the manifest). Copied into .monstack/ readable by the owner's group only."),
    ],
};

pub static TLS: Section = Section {
    what: "`tls`",
    doc: "TLS towards the receiver: a private CA, a client certificate. Verification stays on unless `insecure_skip_verify: true`.",
    fields: &[
        opt("ca_file", Ty::Str, "PEM file of the CA that signed the receiver's certificate (relative to the manifest). Default: the system's CAs."),
        opt("cert_file", Ty::Str, "PEM client certificate, for receivers that require one; needs `key_file`."),
        opt("key_file", Ty::Str, "PEM private key of the client certificate; a secret, copied into .monstack/ readable by the owner's group only."),
        opt("server_name", Ty::Str, "Name expected in the receiver's certificate, when it differs from the URL's host."),
        opt("insecure_skip_verify", Ty::Bool, "Accept any certificate the receiver shows, which lets anyone on the path read and change the samples. Default: false."),
    ],
};

pub static QUEUE_CONFIG: Section = Section {
    what: "`queue_config`",
    doc: "How Prometheus buffers and batches samples for this receiver (Prometheus' own defaults when absent).",
    fields: &[
        opt("capacity", Ty::Int { min: 1, max: 10_000_000 }, "Samples buffered per shard before reading from the WAL blocks. Default: 10000."),
        opt("max_shards", Ty::Int { min: 1, max: 10_000 }, "Most parallel senders. Default: 50."),
        opt("min_shards", Ty::Int { min: 1, max: 10_000 }, "Fewest parallel senders. Default: 1."),
        opt("max_samples_per_send", Ty::Int { min: 1, max: 1_000_000 }, "Most samples in one request. Default: 2000."),
        opt("batch_send_deadline", Ty::Duration, "Longest a sample waits in a shard before it is sent. Default: 5s."),
        opt("min_backoff", Ty::Duration, "First wait before retrying a failed request. Default: 30ms."),
        opt("max_backoff", Ty::Duration, "Longest wait between retries. Default: 5s."),
    ],
};

pub static WRITE_RELABEL: Section = Section {
    what: "a write relabel rule",
    doc: "One Prometheus relabel rule applied to every series before it is sent.",
    fields: &[
        opt(
            "source_labels",
            Ty::StrList,
            "Labels whose values, joined by `separator`, are matched against `regex`.",
        ),
        opt("separator", Ty::Str, "Default: `;`."),
        opt(
            "regex",
            Ty::Str,
            "RE2 regular expression, anchored at both ends. Default: `(.*)`.",
        ),
        opt(
            "target_label",
            Ty::Str,
            "Label written by replace, hashmod, lowercase, uppercase.",
        ),
        opt("replacement", Ty::Str, "Default: `$1`."),
        opt(
            "modulus",
            Ty::Int {
                min: 1,
                max: i64::MAX,
            },
            "For hashmod.",
        ),
        opt("action", Ty::Enum(RELABEL_ACTIONS), "Default: replace."),
    ],
};

/// Prometheus 3's relabel actions.
pub const RELABEL_ACTIONS: &[&str] = &[
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
];

pub static REMOTE_WRITE: Section = Section {
    what: "a remote_write entry",
    doc: "A receiver Prometheus sends every sample to (Mimir, Thanos, VictoriaMetrics, another Prometheus).",
    fields: &[
        super::req("url", Ty::Str, "http(s) URL of the receiver; with a `preset`, its base URL (the preset adds the path)."),
        opt("name", Ty::Str, "Unique name, shown by `status` and in Prometheus' metrics (`remote_name`). Default: the URL's host."),
        opt("preset", Ty::Enum(PRESETS), "mimir (/api/v1/push, X-Scope-OrgID), thanos (/api/v1/receive, THANOS-TENANT) or victoriametrics (/api/v1/write; with a tenant, the cluster's /insert/<accountID>/prometheus/api/v1/write)."),
        opt("tenant", Ty::Str, "Tenant the preset sends to: the header for mimir and thanos, `accountID` or `accountID:projectID` in the path for victoriametrics."),
        opt("headers", Ty::StrMap, "Extra HTTP headers, not secret (use `basic_auth` or `bearer_token_file` for credentials)."),
        opt("basic_auth", Ty::Obj(&BASIC_AUTH), "HTTP basic authentication."),
        opt("bearer_token_file", Ty::Str, "File holding a bearer token, sent as `Authorization: Bearer ...` (relative to the manifest)."),
        opt("tls", Ty::Obj(&TLS), "TLS settings."),
        opt("remote_timeout", Ty::Duration, "Timeout of one request. Default: 30s."),
        opt("queue_config", Ty::Obj(&QUEUE_CONFIG), "Buffering and batching."),
        opt("keep", Ty::StrList, "Send only the metrics whose names match one of these (names or RE2 regexes, anchored)."),
        opt("drop", Ty::StrList, "Do not send the metrics whose names match one of these (names or RE2 regexes, anchored)."),
        opt("write_relabel_configs", Ty::List(&WRITE_RELABEL), "Prometheus relabel rules applied before sending, after `keep` and `drop`."),
    ],
};

/// `mode`, `remote_write` and `remote_write_receiver`, appended to the `prometheus` section.
pub const PROMETHEUS_FIELDS: [Field; 3] = [
    opt("mode", Ty::Enum(&["server", "agent"]), "server (default: stores, queries, evaluates rules, feeds Grafana) or agent (Prometheus' agent mode for a host that only collects: scrapes and sends everything to `remote_write`, no local queries, rules, alerts or Grafana)."),
    opt("remote_write", Ty::List(&REMOTE_WRITE), "Receivers every sample is also sent to; required in agent mode."),
    opt("remote_write_receiver", Ty::Bool, "Accept samples other Prometheus servers and agents send (`--web.enable-remote-write-receiver`, path /api/v1/write), e.g. on the central stack of several hosts. The endpoint has no authentication of its own. Default: false."),
];
