//! monstack: a complete monitoring stack (Prometheus, Grafana, etcd, Alertmanager, Pushgateway)
//! for any project, from one `monstack.yaml`.
//!
//! Data flows one way: manifest -> validated model -> rendered files -> (later) plan ->
//! Docker/HTTP -> health. Everything up to the rendered files is pure.

pub mod agent;
pub mod agent_image;
pub mod api;
pub mod cli;
pub mod commands;
pub mod containers;
pub mod dashboards;
pub mod dingtalk;
pub mod discovery;
pub mod docker;
pub mod error;
pub mod etcd;
pub mod fsutil;
pub mod logging;
pub mod manifest;
pub mod model;
pub mod output;
pub mod plan;
pub mod render;
pub mod secrets;
#[cfg(test)]
pub mod testsupport;
pub mod yaml;
