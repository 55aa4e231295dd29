//! What the plan is made from: a Piraeus Operator v1 installation as read from the cluster (the
//! engine's `upgrade_plan` step fills it in). Plain data, so that the mapping is a pure function
//! that the unit tests feed from the recorded chart manifests.

use serde_json::{Map, Value};

use crate::linstor::toml::Backend;

/// One v1 custom resource: its name, finalizers and `spec` as the API server returned them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct V1Resource {
    pub name: String,
    pub namespace: String,
    pub finalizers: Vec<String>,
    pub spec: Map<String, Value>,
}

impl V1Resource {
    /// A resource from its JSON (`metadata` and `spec`), as `kubectl get -o json` shows it.
    pub fn from_object(object: &Value) -> Self {
        let meta = &object["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Self {
            name: text(&meta["name"]),
            namespace: text(&meta["namespace"]),
            finalizers: meta["finalizers"]
                .as_array()
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            spec: object["spec"].as_object().cloned().unwrap_or_default(),
        }
    }

    /// `spec.<field>` when it is set: present, not null, not `""`, not an empty list or map
    /// (the v1 chart renders unset values as `""`, `[]` and `{}`, REFERENCE.md §2).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.spec.get(name).filter(|v| is_set(v))
    }

    /// `spec.<field>` as a non-empty string.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(Value::as_str)
    }
}

/// True for a value that says something: not null, `""`, `false`, `[]` or `{}`.
pub fn is_set(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// The Helm release of the v1 chart, decoded from its release Secret.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HelmValues {
    pub release: String,
    pub namespace: String,
    /// The chart's name (`piraeus`).
    pub chart_name: String,
    /// The user-supplied values (`helm get values`).
    pub values: Value,
}

/// Another Helm release found next to the installation (the HA or the affinity controller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherRelease {
    pub name: String,
    pub namespace: String,
    pub chart_name: String,
}

/// The LUKS passphrase Secret named by `LinstorController.spec.luksSecret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passphrase {
    /// `luksSecret` is empty: the controller starts without `MASTER_PASSPHRASE`.
    NotConfigured,
    /// The Secret does not exist.
    Missing { secret: String },
    /// The Secret exists without the key `MASTER_PASSPHRASE`.
    NoKey { secret: String },
    /// The Secret holds `MASTER_PASSPHRASE` (its value is never read into the plan).
    Present { secret: String },
    /// This service may not read the Secret (why).
    Unreadable { secret: String, why: String },
}

/// The v1 operator's own Deployment (`<release>-operator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDeployment {
    pub name: String,
    /// Its pods' label selector, `k=v,...`.
    pub selector: String,
}

/// What the satellites' LINSTOR nodes say about node labels (v1 copies every label of a node
/// into the LINSTOR property `Aux/<label>`; v2 keeps only three of them in sync).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeLabels {
    /// `(LINSTOR node, Aux property keys without the `Aux/` prefix)` of every satellite.
    Known(Vec<(String, Vec<String>)>),
    /// The LINSTOR REST API could not be asked (why).
    Unknown(String),
}

/// Everything the plan looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct V1Installation {
    /// The namespace of the v1 installation.
    pub namespace: String,
    /// Where Piraeus Operator v2 will run (the namespace its passphrase Secret must be in).
    pub target_namespace: String,
    pub controller: V1Resource,
    /// `namespace/name` of every LinstorController the service can see.
    pub controllers_found: Vec<String>,
    pub satellite_sets: Vec<V1Resource>,
    pub csi_drivers: Vec<V1Resource>,
    /// The backend `linstor.toml` in the controller's ConfigMap says.
    pub backend: Backend,
    /// The `connection_url` of that `linstor.toml`.
    pub config_url: Option<String>,
    /// The controller Deployment (for the LINSTOR client commands).
    pub controller_deployment: String,
    /// LINSTOR version of the controller image.
    pub linstor_version: Option<String>,
    pub helm: Option<HelmValues>,
    pub other_releases: Vec<OtherRelease>,
    pub passphrase: Passphrase,
    pub operator: Option<OperatorDeployment>,
    /// Names of the `*.piraeus.linbit.com` CRDs that exist.
    pub v1_crds: Vec<String>,
    /// Names of the `*.piraeus.io` (v2) CRDs that exist.
    pub v2_crds: Vec<String>,
    pub node_labels: NodeLabels,
    /// The etcd StatefulSet of the release, when it still exists.
    pub etcd_stateful_set: Option<String>,
}
