//! The registry as the agent last brought its target files in line with etcd, kept for
//! `GET /sd/etcd`: Prometheus' HTTP service discovery asks the agent directly where it cannot
//! read the files (on Kubernetes, `monstack export kubernetes` points an `httpSDConfigs` here).
//!
//! The bridge copies its registry here after every listing and mirrors each change it applies
//! from the watch (one registration, not the whole registry), so the answer is always one the
//! files also had, and an event costs the same at 10,000 services as at ten.

use std::sync::RwLock;

use super::{Registration, Registry};

/// The published registry; `None` until the first listing succeeded.
#[derive(Debug, Default)]
pub struct Published {
    registry: RwLock<Option<Registry>>,
}

impl Published {
    /// After a listing: the whole registry.
    pub fn replace(&self, registry: &Registry) {
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Some(registry.clone());
    }

    /// After an event: what is registered at `key` now (`None`: nothing).
    pub fn mirror(&self, key: &str, now: Option<&Registration>) {
        let mut guard = self.registry.write().unwrap_or_else(|e| e.into_inner());
        let Some(registry) = guard.as_mut() else {
            return;
        };
        match now {
            Some(registration) => {
                registry.apply_put(key, registration.clone());
            }
            None => {
                registry.apply_delete(key);
            }
        }
    }

    /// The HTTP SD answer, or `None` before the first listing (the agent then answers 503, and
    /// Prometheus keeps the targets it had: an agent restart is no outage of the targets).
    pub fn answer(&self) -> Option<Vec<u8>> {
        let guard = self.registry.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(Registry::http_sd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::discovery::Registration;
    use std::collections::BTreeMap;

    #[test]
    fn nothing_is_answered_before_the_first_listing_then_every_mirrored_change() {
        let published = Published::default();
        let api = Registration {
            name: "api".into(),
            id: "1".into(),
            address: "10.0.0.7:8080".into(),
            metrics_path: "/internal/metrics".into(),
            labels: BTreeMap::from([("env".into(), "prod".into())]),
            registered_as: None,
        };
        // Before the first listing, changes are not answered.
        published.mirror("/service/api/1", Some(&api));
        assert_eq!(published.answer(), None);
        let mut registry = Registry::default();
        published.replace(&registry);
        assert_eq!(published.answer().unwrap(), b"[]");
        published.mirror("/service/api/1", Some(&api));
        registry.apply_put("/service/api/1", api);
        assert_eq!(published.answer().unwrap(), registry.http_sd());
        let answer: serde_json::Value =
            serde_json::from_slice(&published.answer().unwrap()).unwrap();
        assert_eq!(
            answer,
            serde_json::json!([{"targets": ["10.0.0.7:8080"], "labels": {
                "__metrics_path__": "/internal/metrics", "env": "prod", "job": "api",
                "service": "api", "service_id": "1"}}])
        );
        published.mirror("/service/api/1", None);
        assert_eq!(published.answer().unwrap(), b"[]");
    }
}
