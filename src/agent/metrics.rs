//! The agent's `/metrics` page: the discovery bridge's and the DingTalk relay's counters, then the
//! agent's own uptime and version, in the Prometheus text format. The router in `agent` serves it.

use std::time::Instant;

use super::dingtalk::Relay;
use super::discovery::BridgeMetrics;

/// The content type of the Prometheus text exposition format.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The whole page; `started` is when the agent started.
pub(super) fn render(bridge: &BridgeMetrics, relay: &Relay, started: Instant) -> String {
    let mut text = bridge.render_prometheus_text();
    text.push_str(&relay.render_prometheus_text());
    text.push_str("# HELP monstack_agent_uptime_seconds Seconds since the agent started.\n# TYPE monstack_agent_uptime_seconds gauge\n");
    text.push_str(&format!(
        "monstack_agent_uptime_seconds {:.3}\n",
        started.elapsed().as_secs_f64()
    ));
    text.push_str(
        "# HELP monstack_agent_info The agent's version.\n# TYPE monstack_agent_info gauge\n",
    );
    text.push_str(&format!(
        "monstack_agent_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    text
}
