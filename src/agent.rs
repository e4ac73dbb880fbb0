//! The monstack agent: runs next to the stack (as the container `agent`, or in the foreground
//! with `monstack agent`). It bridges etcd registrations into Prometheus target files and
//! serves its own `/metrics` and `/-/ready` on port 8060.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::discovery::{self, BridgeMetrics};
use crate::etcd::Etcd;

/// Where discovered services come from and where their target files go.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub etcd_url: String,
    pub prefix: String,
    pub targets_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub listen: SocketAddr,
    pub discovery: Option<DiscoveryConfig>,
}

struct Shared {
    metrics: Arc<BridgeMetrics>,
    discovery: bool,
    started: std::time::Instant,
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = Arc::new(BridgeMetrics::default());
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        discovery: config.discovery.is_some(),
        started: std::time::Instant::now(),
    });
    let app = router(shared);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!("agent listening on {}", config.listen);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await
        })
    };
    let bridge = config.discovery.map(|d| {
        let client = crate::api::http_client();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let client = match client {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("{e:#}");
                    return;
                }
            };
            tracing::info!(
                "bridging {}{}* into {}",
                d.etcd_url,
                d.prefix,
                d.targets_dir.display()
            );
            // The stack's etcd sends progress notes every 30 s: silence for longer than two of
            // them means the connection is dead.
            let etcd = Etcd::new(&client, d.etcd_url)
                .with_watch_idle_timeout(std::time::Duration::from_secs(75));
            discovery::run_bridge(etcd, d.prefix, d.targets_dir, metrics, async move {
                let _ = stop.changed().await;
            })
            .await;
        })
    });
    shutdown.await;
    let _ = stop_tx.send(true);
    if let Some(bridge) = bridge {
        let _ = bridge.await;
    }
    server
        .await
        .context("agent HTTP server")?
        .context("agent HTTP server")?;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/ready", get(ready))
        .route("/-/healthy", get(healthy))
        .with_state(shared)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut text = shared.metrics.render_prometheus_text();
    text.push_str("# HELP monstack_agent_uptime_seconds Seconds since the agent started.\n# TYPE monstack_agent_uptime_seconds gauge\n");
    text.push_str(&format!(
        "monstack_agent_uptime_seconds {:.3}\n",
        shared.started.elapsed().as_secs_f64()
    ));
    text.push_str(
        "# HELP monstack_agent_info The agent's version.\n# TYPE monstack_agent_info gauge\n",
    );
    text.push_str(&format!(
        "monstack_agent_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Ready once the target files reflect etcd (the first listing succeeded), or at once when the
/// agent does no discovery.
async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if !shared.discovery || shared.metrics.last_sync_unix.load(Ordering::Relaxed) > 0 {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first listing from etcd\n",
        )
    }
}

async fn healthy() -> impl IntoResponse {
    (StatusCode::OK, "healthy\n")
}
