//! Command-line arguments (clap derive only). `commands` turns the parsed tree into plain
//! settings before any work starts; the value enums (`PullPolicy`, `Lang`, and `ColorChoice`
//! from `output`) are plain enums the library takes as they are.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::output::ColorChoice;

/// A complete monitoring stack (Prometheus, Grafana, etcd, Alertmanager, Pushgateway) for any
/// project, from one file: monstack.yaml.
#[derive(Debug, Parser)]
#[command(
    name = "monstack",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Start with `monstack init`, then `monstack validate` and `monstack up` (`monstack render` writes the files without starting anything)."
)]
pub struct Cli {
    /// The manifest to read. Goes before the subcommand, as with docker compose:
    /// `monstack -f deploy/monstack.yaml up`.
    #[arg(short = 'f', long = "file", value_name = "PATH", env = "MONSTACK_FILE")]
    pub file: Option<PathBuf>,

    /// Print only errors, warnings and requested output.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// More detail: -v for debug logs, -vv for trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours (NO_COLOR is honoured with `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter monstack.yaml.
    ///
    /// The bundled dashboard is chosen from go.mod or Cargo.toml in this directory unless
    /// --lang says otherwise.
    ///
    /// Example: monstack init --lang rust
    Init {
        /// The language of the services to monitor.
        #[arg(long, value_enum)]
        lang: Option<Lang>,
        /// Overwrite an existing manifest.
        #[arg(long)]
        force: bool,
    },
    /// Check the manifest and print a one-line summary, or every problem found.
    Validate,
    /// Write every generated file into .monstack/ next to the manifest.
    Render,
    /// Start or update the stack: render, reconcile the containers, wait until all are ready.
    ///
    /// Runs detached (a monitoring stack outlives the terminal). A second `up` with nothing
    /// changed does nothing; a changed configuration file is reloaded, a changed container
    /// setting recreates only that container.
    ///
    /// Example: monstack up --timeout 120
    Up {
        /// Detached: the default and only mode (accepted for docker compose habits).
        #[arg(short, long)]
        detach: bool,
        /// When to pull images.
        #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
        pull: PullPolicy,
        /// Seconds to wait for every service to be ready.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Remove the stack's containers and network; data volumes stay unless --volumes.
    Down {
        /// Also remove the data volumes (Prometheus, Grafana, etcd, Alertmanager data). No
        /// short form: `-v` is `--verbose` everywhere.
        #[arg(long)]
        volumes: bool,
        /// The project to take down, when the manifest cannot say (it does not load and names
        /// no project). With --volumes it also removes volumes another directory created.
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
    },
    /// Show each service's container, health, image and URL, and Prometheus' targets.
    Status {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Show the services' logs, prefixed by service name.
    ///
    /// Example: monstack logs prometheus -f --tail 50
    Logs {
        /// Services to show (default: all).
        services: Vec<String>,
        /// Keep following new output.
        #[arg(short, long)]
        follow: bool,
        /// Lines from the end of each log (default: all).
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Add scrape targets to a job (created when new), without restarting Prometheus.
    ///
    /// Edits monstack.yaml in place (comments kept) and the job's target file; on a running
    /// stack, waits until Prometheus lists the targets and shows their health.
    ///
    /// Example: monstack add-target order host.docker.internal:8085 --label env=dev
    AddTarget {
        /// The job (the `job` label).
        job: String,
        /// `host:port` addresses.
        #[arg(required = true, value_name = "ADDR")]
        addrs: Vec<String>,
        /// Metrics path for the job.
        #[arg(long)]
        path: Option<String>,
        /// http or https.
        #[arg(long)]
        scheme: Option<String>,
        /// Scrape interval for the job, e.g. 10s.
        #[arg(long)]
        interval: Option<String>,
        /// How Prometheus 3 parses a scrape without a Prometheus Content-Type, e.g.
        /// PrometheusText0.0.4 (it drops such a scrape otherwise).
        #[arg(long, value_name = "PROTOCOL")]
        fallback_scrape_protocol: Option<String>,
        /// A label for the job's targets, K=V (repeatable).
        #[arg(long = "label", value_name = "K=V")]
        labels: Vec<String>,
        /// How long to wait for Prometheus to list the targets.
        #[arg(long, default_value = "15s", value_name = "DURATION")]
        wait: String,
    },
    /// Remove targets from a job, or the whole job when no address is given.
    RemoveTarget {
        job: String,
        #[arg(value_name = "ADDR")]
        addrs: Vec<String>,
    },
    /// List every target: from the manifest or from etcd, with its health when the stack is up.
    Targets {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the agent in the foreground: etcd registrations -> Prometheus target files, and the
    /// DingTalk relay (POST /dingtalk/CHANNEL, GET /dingtalk/CHANNEL/status).
    ///
    /// `monstack up` runs it as a container; run it yourself where that is not possible (e.g. a
    /// macOS host) or under systemd. Without options it reads the manifest, and the DingTalk
    /// channels from .monstack/agent/agent.yml when `monstack render` wrote one. With --config,
    /// or with --etcd and --targets-dir, it reads no manifest: the options say everything.
    Agent {
        /// etcd's URL (default: discovery.etcd.endpoints, else the stack's etcd on this
        /// machine). Several members: repeat it or separate them with commas; they are tried
        /// in turn when one fails.
        #[arg(long, value_name = "URL", value_delimiter = ',')]
        etcd: Vec<String>,
        #[command(flatten)]
        etcd_access: EtcdAccess,
        /// Key prefix services register under (default: discovery.etcd.prefix).
        #[arg(long)]
        prefix: Option<String>,
        /// Directory of the discovered target files (default: .monstack/prometheus/targets/etcd).
        #[arg(long, value_name = "DIR")]
        targets_dir: Option<PathBuf>,
        /// Address of the agent's HTTP server (/metrics, /-/ready).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// The agent's config file with the DingTalk channels (default, without other options:
        /// .monstack/agent/agent.yml if it exists).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Keep registrations of localhost / 127.0.0.0/8 / ::1 as they are, instead of
        /// scraping them at host.docker.internal (default: discovery.etcd.rewrite_loopback).
        #[arg(long)]
        keep_loopback: bool,
    },
    /// Write the discovered target files once from etcd, and exit (for scripts).
    Sync,
    /// Register a service in the stack's etcd and keep it registered until Ctrl-C.
    ///
    /// Writes /service/NAME/ID with a lease in the common JSON format; the lease is revoked on
    /// exit, so the target disappears at once. For services without an etcd client, demos, tests.
    ///
    /// Example: monstack register order host.docker.internal:8085 --label env=dev
    Register {
        /// Service name.
        name: String,
        /// `host:port` where its metrics are served (as Prometheus reaches it).
        addr: String,
        /// Instance id (default: random).
        #[arg(long)]
        id: Option<String>,
        /// Lease time to live.
        #[arg(long, default_value = "10s", value_name = "DURATION")]
        ttl: String,
        /// Metrics path.
        #[arg(long, default_value = "/metrics")]
        path: String,
        /// A label, K=V (repeatable).
        #[arg(long = "label", value_name = "K=V")]
        labels: Vec<String>,
    },
    /// Add a Grafana dashboard to the stack, ready to show data on its first load.
    ///
    /// SOURCE is a bundled dashboard (see `monstack dashboards`), a JSON file, an http(s) URL,
    /// or grafana.com/ID (also gnet:ID; the latest revision). Datasource inputs such as
    /// ${DS_PROMETHEUS} are resolved to the stack's datasources, the file is saved as
    /// dashboards/UID.json and listed in monstack.yaml (comments kept). On a running stack it is
    /// also pushed to Grafana, and the metric names Prometheus lacks are listed with close names.
    ///
    /// Example: monstack import-dashboard grafana.com/1860 --folder Hosts
    ImportDashboard {
        /// Bundled name, JSON file, URL, or grafana.com/ID.
        source: String,
        /// Grafana folder to put it in (default: General).
        #[arg(long, value_name = "NAME")]
        folder: Option<String>,
        /// Replace an existing dashboards/UID.json that holds another version.
        #[arg(long)]
        force: bool,
    },
    /// List the bundled dashboards and the manifest's dashboards.
    Dashboards,
    /// Check that alerts arrive (`alert test`), or list the rules and firing alerts.
    Alert {
        #[command(subcommand)]
        command: AlertCommand,
    },
    /// Write the stack for another platform (Kubernetes with kube-prometheus-stack).
    Export {
        #[command(subcommand)]
        target: ExportTarget,
    },
    /// Print the JSON Schema of monstack.yaml (for editors).
    Schema,
    /// Print shell completions.
    ///
    /// Example: monstack completions bash > /etc/bash_completion.d/monstack
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Send a test alert through Alertmanager to channels and report, per channel, whether it
    /// was delivered or why it failed. Exits 1 when any failed.
    ///
    /// The alert (MonstackTest) reaches only the named channels (default: all), is resolved
    /// afterwards, and needs a running stack (`monstack up`).
    ///
    /// Example: monstack alert test ops-mail ops-ding
    Test {
        /// Channels to test (default: every channel).
        channels: Vec<String>,
    },
    /// List Prometheus' alerting rules (state, health, last error) and the firing alerts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// A kustomize directory for a cluster running kube-prometheus-stack: ScrapeConfigs,
    /// PrometheusRules, an AlertmanagerConfig, Grafana sidecar ConfigMaps, the agent and etcd.
    ///
    /// Every object is labelled `release: RELEASE`, which kube-prometheus-stack selects by.
    /// Secrets (SMTP password, webhook, Slack and DingTalk URLs) go into Secret objects, written
    /// readable by you alone. Apply with `kubectl apply -k DIR --server-side`.
    ///
    /// Example: monstack export kubernetes --namespace monitoring --release prom -o k8s/
    Kubernetes {
        /// The namespace of every object.
        #[arg(long, default_value = "monitoring", value_name = "N")]
        namespace: String,
        /// kube-prometheus-stack's Helm release name (the `release` label it selects).
        #[arg(long, default_value = "kube-prometheus-stack", value_name = "R")]
        release: String,
        /// The directory to write (created; an earlier export there is replaced).
        #[arg(short, long, default_value = "kubernetes", value_name = "DIR")]
        output: PathBuf,
        /// The agent's image, where the cluster can pull it (default: monstack-agent:VERSION).
        #[arg(long, value_name = "IMAGE")]
        agent_image: Option<String>,
        /// An etcd the cluster already has (http://host:2379); without it the stack's own
        /// single-member etcd is exported.
        #[arg(long, value_name = "URL")]
        etcd: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull images that are not on this machine.
    Missing,
    /// Pull every image, even when present.
    Always,
    /// Never pull; fail when an image is missing.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Go,
    Rust,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

/// How `monstack agent --etcd` reaches a cluster with TLS and auth (what the manifest's
/// `discovery.etcd.tls`, `username` and `password_file` say; the stack's agent container gets
/// them from there).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdAccess {
    /// The CA of the etcd members' certificates (PEM), the only one trusted.
    #[arg(long, value_name = "PATH")]
    pub etcd_ca: Option<PathBuf>,
    /// The client certificate (PEM) for etcd's --client-cert-auth.
    #[arg(long, value_name = "PATH", requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, unencrypted).
    #[arg(long, value_name = "PATH", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// The etcd user to authenticate as.
    #[arg(long, value_name = "NAME", requires = "etcd_password_file")]
    pub etcd_user: Option<String>,
    /// A file holding that user's password.
    #[arg(long, value_name = "PATH", requires = "etcd_user")]
    pub etcd_password_file: Option<PathBuf>,
    /// The cluster's --experimental-watch-progress-notify-interval: a watch silent for twice
    /// that (and 15 s) is declared dead (default: 10m, etcd's; the stack's own etcd: 30s).
    #[arg(long, value_name = "DURATION")]
    pub etcd_progress_interval: Option<String>,
}
