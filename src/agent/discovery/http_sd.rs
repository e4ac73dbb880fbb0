//! The registry as the agent last brought its target files in line with etcd, kept for
//! `GET /sd/etcd`: Prometheus' HTTP service discovery asks the agent directly where it cannot
//! read the files (on Kubernetes, `monstack export kubernetes` points an `httpSDConfigs` here).
//!
//! The bridge publishes a copy after every listing and every event that changed a target, so
//! the answer is always one the files also had, and the handler never waits for the bridge.

use std::sync::{Arc, RwLock};

use super::Registry;

/// The last published registry; `None` until the first listing succeeded.
#[derive(Debug, Default)]
pub struct Published {
    registry: RwLock<Option<Arc<Registry>>>,
}

impl Published {
    pub fn publish(&self, registry: &Registry) {
        let copy = Arc::new(registry.clone());
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Some(copy);
    }

    /// The HTTP SD answer, or `None` before the first listing (the agent then answers 503, and
    /// Prometheus keeps the targets it had: an agent restart is no outage of the targets).
    pub fn answer(&self) -> Option<Vec<u8>> {
        let registry = self
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        Some(registry.http_sd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::discovery::Registration;
    use std::collections::BTreeMap;

    #[test]
    fn nothing_is_published_before_the_first_listing_then_the_latest_copy() {
        let published = Published::default();
        assert_eq!(published.answer(), None);
        let mut registry = Registry::default();
        published.publish(&registry);
        assert_eq!(published.answer().unwrap(), b"[]");
        registry.apply_put(
            "/service/api/1",
            Registration {
                name: "api".into(),
                id: "1".into(),
                address: "10.0.0.7:8080".into(),
                metrics_path: "/internal/metrics".into(),
                labels: BTreeMap::from([("env".into(), "prod".into())]),
            },
        );
        // A change the bridge has not published yet is not answered.
        assert_eq!(published.answer().unwrap(), b"[]");
        published.publish(&registry);
        let answer: serde_json::Value =
            serde_json::from_slice(&published.answer().unwrap()).unwrap();
        assert_eq!(
            answer,
            serde_json::json!([{"targets": ["10.0.0.7:8080"], "labels": {
                "__metrics_path__": "/internal/metrics", "env": "prod",
                "service": "api", "service_id": "1"}}])
        );
    }
}
