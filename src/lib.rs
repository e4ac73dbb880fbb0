//! monstack: a complete monitoring stack (Prometheus, Grafana, etcd, Alertmanager, Pushgateway)
//! for any project, from one `monstack.yaml`.
//!
//! Data flows one way: manifest -> validated model -> rendered files -> (later) plan ->
//! Docker/HTTP -> health. Everything up to the rendered files is pure.

pub mod agent;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod dashboards;
pub mod error;
pub mod files;
pub mod layout;
pub mod logging;
pub mod manifest;
pub mod model;
pub mod output;
pub mod project;
pub mod render;
pub mod signal;
pub mod stack;
#[cfg(test)]
pub mod testsupport;
