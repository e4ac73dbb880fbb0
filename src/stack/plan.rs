//! Desired containers vs what the engine reports -> the actions that converge them. Pure.

use std::collections::BTreeMap;
use std::fmt;

use crate::stack::containers::{ContainerSpec, Reload};
use crate::stack::state::MountedDir;

/// A container of this project as the engine reports it, read back through its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    /// `io.monstack.service`.
    pub service: String,
    pub running: bool,
    /// Engine state as reported (`running`, `exited`, `created`, ...), for messages.
    pub state: String,
    pub spec_hash: String,
    pub config_hash: String,
    /// The id of the image the container runs (`sha256:...`).
    pub image_id: String,
    /// When it was created (Unix seconds; 0 when unknown).
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        service: String,
    },
    Recreate {
        service: String,
        reason: String,
    },
    /// Up to date but not running (stopped, or created by an interrupted `up`).
    Start {
        service: String,
    },
    /// Running with the right spec; only its configuration files changed.
    Reload {
        service: String,
    },
    Keep {
        service: String,
    },
    /// A container of the project that is no longer wanted (service removed from the manifest,
    /// or a duplicate). Its data volume is kept.
    Remove {
        name: String,
        reason: String,
    },
}

impl Action {
    pub fn changes_anything(&self) -> bool {
        !matches!(self, Action::Keep { .. })
    }

    /// Whether the action (re)creates the container, so its host port must be free first.
    pub fn needs_port(&self) -> Option<&str> {
        match self {
            Action::Create { service }
            | Action::Recreate { service, .. }
            | Action::Start { service } => Some(service),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create { service } => write!(f, "create   {service}"),
            Action::Recreate { service, reason } => write!(f, "recreate {service} ({reason})"),
            Action::Start { service } => write!(f, "start    {service}"),
            Action::Reload { service } => write!(f, "reload   {service} (configuration changed)"),
            Action::Keep { service } => write!(f, "keep     {service} (up to date)"),
            Action::Remove { name, reason } => write!(f, "remove   {name} ({reason})"),
        }
    }
}

/// `applied` maps container ids to the config hash last applied by a reload: container labels
/// cannot change, so after a reload the label alone would look stale forever.
pub fn plan(
    desired: &[ContainerSpec],
    observed: &[Observed],
    applied: &BTreeMap<String, String>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for spec in desired {
        let mut mine = observed.iter().filter(|o| o.service == spec.service);
        let Some(current) = mine.next() else {
            actions.push(Action::Create {
                service: spec.service.to_string(),
            });
            continue;
        };
        for duplicate in mine {
            actions.push(Action::Remove {
                name: duplicate.name.clone(),
                reason: format!("second container of {}", spec.service),
            });
        }
        let config_hash = applied.get(&current.id).unwrap_or(&current.config_hash);
        let service = spec.service.to_string();
        let action = if current.spec_hash != spec.spec_hash {
            let reason = if current.spec_hash.is_empty() {
                "not created by this monstack".to_string()
            } else {
                "container settings changed".to_string()
            };
            Action::Recreate { service, reason }
        } else if !current.running {
            // A start reads the configuration files afresh.
            Action::Start { service }
        } else if *config_hash != spec.config_hash {
            match spec.reload {
                Reload::None => Action::Recreate {
                    service,
                    reason: "configuration changed".into(),
                },
                _ => Action::Reload { service },
            }
        } else {
            Action::Keep { service }
        };
        actions.push(action);
    }
    for orphan in observed
        .iter()
        .filter(|o| !desired.iter().any(|d| d.service == o.service))
    {
        let reason = if orphan.service.is_empty() {
            "no service label".to_string()
        } else {
            format!("{} is not in the manifest", orphan.service)
        };
        actions.push(Action::Remove {
            name: orphan.name.clone(),
            reason,
        });
    }
    actions
}

/// Containers that must be recreated because a directory they bind-mount was deleted or
/// replaced since they started (`rm -rf .monstack`, a checkout): they still see the old one.
/// Known from the inodes recorded when each container started (`mounts_then`, by container
/// id); without a record, from a directory that is missing or younger than the container.
/// `mounts_now` holds each service's mounted directories as they are now.
pub fn repair(
    actions: Vec<Action>,
    observed: &[Observed],
    mounts_then: &BTreeMap<String, BTreeMap<String, u64>>,
    mounts_now: &BTreeMap<String, BTreeMap<String, MountedDir>>,
) -> Vec<Action> {
    actions
        .into_iter()
        .map(|action| {
            let service = match &action {
                Action::Keep { service } | Action::Reload { service } => service.clone(),
                _ => return action,
            };
            let (Some(current), Some(now)) = (
                observed.iter().find(|o| o.service == service),
                mounts_now.get(&service),
            ) else {
                return action;
            };
            let stale = match mounts_then.get(&current.id) {
                Some(then) => then
                    .iter()
                    .find(|(path, inode)| now.get(*path).map(|d| d.inode) != Some(**inode))
                    .map(|(path, _)| path.clone()),
                None => now
                    .iter()
                    .find(|(_, dir)| {
                        dir.inode == 0
                            || dir
                                .born
                                .is_some_and(|born| current.created > 0 && born > current.created)
                    })
                    .map(|(path, _)| path.clone()),
            };
            match stale {
                Some(path) => Action::Recreate {
                    service,
                    reason: format!(
                        "what it mounts from the host ({path}) was deleted or replaced"
                    ),
                },
                None => action,
            }
        })
        .collect()
}

/// A container whose image reference now names another image (pulled with `--pull always`,
/// or rebuilt under the same tag) is recreated: the tag alone says nothing. `image_ids` maps
/// each desired image reference to the id the engine has for it now; references it does not
/// know leave their containers as planned.
pub fn recreate_changed_images(
    actions: Vec<Action>,
    desired: &[ContainerSpec],
    observed: &[Observed],
    image_ids: &BTreeMap<String, String>,
) -> Vec<Action> {
    actions
        .into_iter()
        .map(|action| {
            let service = match &action {
                Action::Keep { service }
                | Action::Reload { service }
                | Action::Start { service } => service.clone(),
                _ => return action,
            };
            let (Some(spec), Some(current)) = (
                desired.iter().find(|s| s.service == service),
                observed.iter().find(|o| o.service == service),
            ) else {
                return action;
            };
            match image_ids.get(&spec.image) {
                Some(id) if !current.image_id.is_empty() && *id != current.image_id => {
                    Action::Recreate {
                        service,
                        reason: format!("its image {} changed", spec.image),
                    }
                }
                _ => action,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{render, testkit};
    use crate::stack::containers::{desired, HostContext};

    fn specs(stack: &crate::model::Stack) -> Vec<ContainerSpec> {
        let tree = render(stack).unwrap();
        desired(
            stack,
            &tree,
            &HostContext {
                out_dir: std::path::Path::new("/p/.monstack"),
                secret_gid: 0,
                grafana_admin_password: "x",
                agent_image: Some("monstack-agent:test"),
                host_user: (1000, 1000),
                host_gateway: None,
                host_root_shared: false,
            },
        )
    }

    fn running(spec: &ContainerSpec) -> Observed {
        Observed {
            id: format!("id-{}", spec.service),
            name: spec.name.clone(),
            service: spec.service.to_string(),
            running: true,
            state: "running".into(),
            spec_hash: spec.spec_hash.clone(),
            config_hash: spec.config_hash.clone(),
            image_id: format!("sha256:{}", spec.image),
            created: 0,
        }
    }

    #[test]
    fn nothing_running_creates_everything() {
        let want = specs(&testkit::full());
        let actions = plan(&want, &[], &BTreeMap::new());
        assert_eq!(actions.len(), 6);
        assert!(actions.iter().all(|a| matches!(a, Action::Create { .. })));
    }

    #[test]
    fn an_unchanged_stack_keeps_everything() {
        let want = specs(&testkit::full());
        let seen: Vec<Observed> = want.iter().map(running).collect();
        let actions = plan(&want, &seen, &BTreeMap::new());
        assert!(actions.iter().all(|a| !a.changes_anything()), "{actions:?}");
    }

    #[test]
    fn a_rules_change_reloads_prometheus_only_and_a_reload_is_remembered() {
        let before = specs(&testkit::full());
        let seen: Vec<Observed> = before.iter().map(running).collect();
        let mut stack = testkit::full();
        stack.alerts[0].expr = "up == 0".into();
        let after = specs(&stack);
        let actions = plan(&after, &seen, &BTreeMap::new());
        let changing: Vec<&Action> = actions.iter().filter(|a| a.changes_anything()).collect();
        assert_eq!(
            changing,
            [&Action::Reload {
                service: "prometheus".into()
            }]
        );
        let applied = BTreeMap::from([("id-prometheus".to_string(), after[0].config_hash.clone())]);
        assert!(plan(&after, &seen, &applied)
            .iter()
            .all(|a| !a.changes_anything()));
    }

    #[test]
    fn a_spec_change_recreates_a_stopped_container_starts_and_orphans_are_removed() {
        let want = specs(&testkit::full());
        let mut seen: Vec<Observed> = want.iter().map(running).collect();
        seen[0].spec_hash = "old".into();
        seen[2].running = false;
        seen.push(Observed {
            id: "x".into(),
            name: "monstack-shop-loki".into(),
            service: "loki".into(),
            running: true,
            state: "running".into(),
            spec_hash: String::new(),
            config_hash: String::new(),
            image_id: String::new(),
            created: 0,
        });
        let actions = plan(&want, &seen, &BTreeMap::new());
        assert_eq!(
            actions[0],
            Action::Recreate {
                service: "prometheus".into(),
                reason: "container settings changed".into()
            }
        );
        assert_eq!(
            actions[2],
            Action::Start {
                service: "etcd".into()
            }
        );
        assert_eq!(
            actions.last().unwrap(),
            &Action::Remove {
                name: "monstack-shop-loki".into(),
                reason: "loki is not in the manifest".into()
            }
        );
    }

    #[test]
    fn disabling_a_service_removes_its_container() {
        let want = specs(&testkit::full());
        let seen: Vec<Observed> = want.iter().map(running).collect();
        let mut stack = testkit::full();
        stack.pushgateway = None;
        let actions = plan(&specs(&stack), &seen, &BTreeMap::new());
        assert!(actions.contains(&Action::Remove {
            name: "monstack-shop-pushgateway".into(),
            reason: "pushgateway is not in the manifest".into()
        }));
    }

    #[test]
    fn a_container_whose_image_changed_under_its_tag_is_recreated() {
        let want = specs(&testkit::full());
        let seen: Vec<Observed> = want.iter().map(running).collect();
        let actions = plan(&want, &seen, &BTreeMap::new());
        let prometheus = want.iter().find(|s| s.service == "prometheus").unwrap();
        // Unknown references and unchanged ids keep the plan.
        let same: BTreeMap<String, String> = want
            .iter()
            .map(|s| (s.image.clone(), format!("sha256:{}", s.image)))
            .collect();
        assert_eq!(
            recreate_changed_images(actions.clone(), &want, &seen, &same),
            actions
        );
        assert_eq!(
            recreate_changed_images(actions.clone(), &want, &seen, &BTreeMap::new()),
            actions
        );
        let moved = BTreeMap::from([(prometheus.image.clone(), "sha256:new".to_string())]);
        let after = recreate_changed_images(actions, &want, &seen, &moved);
        assert!(after.contains(&Action::Recreate {
            service: "prometheus".into(),
            reason: format!("its image {} changed", prometheus.image),
        }));
        assert_eq!(
            after
                .iter()
                .filter(|a| matches!(a, Action::Recreate { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn a_container_whose_mounted_directory_was_replaced_is_recreated() {
        let want = specs(&testkit::full());
        let mut seen: Vec<Observed> = want.iter().map(running).collect();
        let actions = plan(&want, &seen, &BTreeMap::new());
        let dir = |inode: u64, born: Option<i64>| MountedDir { inode, born };
        let now = BTreeMap::from([(
            "prometheus".to_string(),
            BTreeMap::from([("/p/.monstack/prometheus".to_string(), dir(7, Some(100)))]),
        )]);
        let recreated = |actions: &[Action]| {
            actions
                .iter()
                .filter(|a| matches!(a, Action::Recreate { .. }))
                .count()
        };
        // Recorded and unchanged: kept.
        let then = BTreeMap::from([(
            "id-prometheus".to_string(),
            BTreeMap::from([("/p/.monstack/prometheus".to_string(), 7)]),
        )]);
        assert_eq!(recreated(&repair(actions.clone(), &seen, &then, &now)), 0);
        // Recorded, another inode now: recreated.
        let replaced = BTreeMap::from([(
            "id-prometheus".to_string(),
            BTreeMap::from([("/p/.monstack/prometheus".to_string(), 6)]),
        )]);
        assert_eq!(
            recreated(&repair(actions.clone(), &seen, &replaced, &now)),
            1
        );
        // No record: a directory younger than the container is a replacement...
        seen.iter_mut().for_each(|o| o.created = 50);
        assert_eq!(
            recreated(&repair(actions.clone(), &seen, &BTreeMap::new(), &now)),
            1
        );
        // ...an older one is not.
        seen.iter_mut().for_each(|o| o.created = 200);
        assert_eq!(
            recreated(&repair(actions.clone(), &seen, &BTreeMap::new(), &now)),
            0
        );
        // A missing directory always is.
        let gone = BTreeMap::from([(
            "prometheus".to_string(),
            BTreeMap::from([("/p/.monstack/prometheus".to_string(), dir(0, None))]),
        )]);
        assert_eq!(
            recreated(&repair(actions, &seen, &BTreeMap::new(), &gone)),
            1
        );
    }
}
