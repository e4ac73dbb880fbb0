//! Kubernetes objects as typed structs: the metadata every exported object carries, and the
//! few core kinds the export writes (ConfigMap, Secret, Service, Deployment, StatefulSet), with
//! only the fields it sets. Field names are Kubernetes' own (camelCase); `tests/export.rs`
//! validates every core object against Kubernetes' schemas, unknown fields rejected.

use std::collections::BTreeMap;

use serde::Serialize;

/// One object: `apiVersion`, `kind`, `metadata`, then its body (`spec`, `data`, ...).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<B: Serialize> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    #[serde(flatten)]
    pub body: B,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct Spec<S: Serialize> {
    pub spec: S,
}

#[derive(Serialize)]
pub struct ConfigMapBody {
    pub data: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Plain text: the API server stores it base64-encoded under `data`.
    pub string_data: BTreeMap<String, String>,
}

impl SecretBody {
    pub fn opaque(string_data: BTreeMap<String, String>) -> SecretBody {
        SecretBody {
            kind: "Opaque",
            string_data,
        }
    }
}

/// A reference to one key of a Secret (Kubernetes' `SecretKeySelector`).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretKey {
    pub name: String,
    pub key: String,
}

#[derive(Serialize)]
pub struct ServiceSpec {
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePort>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: &'static str,
    pub port: u16,
    pub target_port: &'static str,
    pub protocol: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub replicas: u32,
    pub selector: LabelSelector,
    pub strategy: DeploymentStrategy,
    pub template: PodTemplate,
}

#[derive(Serialize)]
pub struct DeploymentStrategy {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetSpec {
    pub replicas: u32,
    pub service_name: String,
    pub selector: LabelSelector,
    pub template: PodTemplate,
    pub volume_claim_templates: Vec<VolumeClaimTemplate>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct PodTemplate {
    pub metadata: TemplateMeta,
    pub spec: PodSpec,
}

#[derive(Serialize)]
pub struct TemplateMeta {
    pub labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub automount_service_account_token: bool,
    pub enable_service_links: bool,
    pub security_context: PodSecurityContext,
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    pub run_as_non_root: bool,
    pub run_as_user: u32,
    pub run_as_group: u32,
    pub fs_group: u32,
    pub seccomp_profile: SeccompProfile,
}

#[derive(Serialize)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: &'static str,
    pub image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub ports: Vec<ContainerPort>,
    pub readiness_probe: Probe,
    pub liveness_probe: Probe,
    pub resources: Resources,
    pub security_context: ContainerSecurityContext,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: &'static str,
    pub container_port: u16,
    pub protocol: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub http_get: HttpGet,
    pub period_seconds: u32,
    pub failure_threshold: u32,
}

#[derive(Serialize)]
pub struct HttpGet {
    pub path: &'static str,
    pub port: &'static str,
}

impl Probe {
    pub fn http(path: &'static str, failure_threshold: u32) -> Probe {
        Probe {
            http_get: HttpGet { path, port: "http" },
            period_seconds: 10,
            failure_threshold,
        }
    }
}

#[derive(Serialize)]
pub struct Resources {
    pub requests: BTreeMap<&'static str, &'static str>,
    pub limits: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecurityContext {
    pub allow_privilege_escalation: bool,
    pub read_only_root_filesystem: bool,
    pub capabilities: Capabilities,
}

impl Default for ContainerSecurityContext {
    fn default() -> ContainerSecurityContext {
        ContainerSecurityContext {
            allow_privilege_escalation: false,
            read_only_root_filesystem: true,
            capabilities: Capabilities { drop: vec!["ALL"] },
        }
    }
}

#[derive(Serialize)]
pub struct Capabilities {
    pub drop: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: &'static str,
    pub mount_path: &'static str,
    pub read_only: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDir>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolume>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDir {
    pub size_limit: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVolume {
    pub secret_name: String,
    pub default_mode: u32,
}

#[derive(Serialize)]
pub struct VolumeClaimTemplate {
    pub metadata: ClaimMeta,
    pub spec: ClaimSpec,
}

#[derive(Serialize)]
pub struct ClaimMeta {
    pub name: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    pub access_modes: Vec<&'static str>,
    pub resources: ClaimResources,
}

#[derive(Serialize)]
pub struct ClaimResources {
    pub requests: BTreeMap<&'static str, &'static str>,
}
