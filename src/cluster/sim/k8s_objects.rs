//! Direct reads and writes of the simulated `k8s` backend's objects: LISTs page by page as a real
//! API server answers them with `limit` and `continue` (objects in name order; the token is the
//! last name of the page), creates, whole-`spec` replaces and deletes of single objects. As on a
//! real API server, a table whose CRD does not exist, or that does not serve the version asked for
//! (1.33.3's `v1-31-1` on a 1.25.1 backend), answers 404, for reads and writes alike.

use super::SimCluster;
use super::faults::{Fault, api_error};
use crate::cluster::{ClusterError, ClusterResult, K8sBackendObject, K8sBackendPage};
use crate::linstor::schema;
use crate::model::StepName;

/// `(CRD name, kind)` of the CRD of `plural` when it serves `version`; `NotFound` as the API
/// server answers otherwise.
fn served(st: &super::state::State, plural: &str, version: &str) -> ClusterResult<(String, String)> {
    let name = format!("{plural}.{}", schema::K8S_GROUP);
    let crd = st.k8s.crds.get(&name);
    if !st.k8s.serves(plural, version) {
        return Err(ClusterError::NotFound {
            kind: "CustomResource",
            namespace: String::new(),
            name: format!("{name}/{version}"),
        });
    }
    let kind = crd
        .and_then(|c| c["spec"]["names"]["kind"].as_str())
        .unwrap_or_default()
        .to_string();
    Ok((name, kind))
}

impl SimCluster {
    pub(crate) fn list_k8s_backend_page_impl(
        &self,
        plural: &str,
        version: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendPage> {
        let mut st = self.lock();
        // direct reads belong to the data verification (an `Error` fault: the API server fails)
        if st.faults.take(StepName::VerifyData, &[Fault::Error]).is_some() {
            return Err(api_error(StepName::VerifyData, "list k8s backend objects"));
        }
        served(&st, plural, version)?;
        let Some(rows) = st.k8s.objects.get(plural) else {
            return Ok(K8sBackendPage::default());
        };
        let limit = limit.max(1) as usize;
        let mut objects: Vec<K8sBackendObject> = rows
            .iter()
            .filter(|(name, _)| continue_token.is_none_or(|after| name.as_str() > after))
            .take(limit + 1)
            .map(|(name, object)| K8sBackendObject {
                name: name.clone(),
                spec: object
                    .get("spec")
                    .and_then(|s| s.as_object())
                    .map(|row| {
                        row.iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        let more = objects.len() > limit;
        objects.truncate(limit);
        let continue_token = if more {
            objects.last().map(|o| o.name.clone())
        } else {
            None
        };
        Ok(K8sBackendPage {
            objects,
            continue_token,
        })
    }

    /// An `Error` fault at `Import` makes a direct write of the delta import fail, as an API
    /// server that refuses it.
    fn refuse_write(st: &mut super::state::State) -> ClusterResult<()> {
        if st.faults.controller_stopped && st.faults.take(StepName::Import, &[Fault::Error]).is_some() {
            return Err(api_error(StepName::Import, "write a k8s backend object"));
        }
        Ok(())
    }

    /// A `PartialImport` fault at `Import` makes one direct write of the delta import vanish
    /// (accepted, not stored): a difference only the verification can find.
    fn lose_write(st: &mut super::state::State) -> bool {
        st.lose_backend_write()
    }

    pub(crate) fn create_k8s_backend_object_impl(
        &self,
        plural: &str,
        version: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        let mut st = self.lock();
        let (crd_name, kind) = served(&st, plural, version)?;
        Self::refuse_write(&mut st)?;
        if Self::lose_write(&mut st) {
            return Ok(());
        }
        let object_json = serde_json::json!({
            "apiVersion": format!("{}/{version}", schema::K8S_GROUP),
            "kind": kind,
            "metadata": {"name": object.name},
            "spec": object.spec,
        });
        match st.k8s.create(plural, version, object_json) {
            Ok(()) => {}
            Err(409) => {
                return Err(ClusterError::AlreadyExists(format!("{crd_name}/{}", object.name)));
            }
            Err(_) => {
                return Err(ClusterError::NotFound {
                    kind: "CustomResourceDefinition",
                    namespace: String::new(),
                    name: crd_name,
                });
            }
        }
        st.effects.backend_writes += 1;
        st.touch();
        Ok(())
    }

    pub(crate) fn replace_k8s_backend_spec_impl(
        &self,
        plural: &str,
        version: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        let mut st = self.lock();
        let (crd_name, _) = served(&st, plural, version)?;
        Self::refuse_write(&mut st)?;
        if Self::lose_write(&mut st) {
            return Ok(());
        }
        match st
            .k8s
            .objects
            .get_mut(plural)
            .and_then(|objects| objects.get_mut(&object.name))
        {
            Some(found) => found["spec"] = serde_json::Value::Object(object.spec.clone()),
            None => {
                return Err(ClusterError::NotFound {
                    kind: "CustomResource",
                    namespace: String::new(),
                    name: format!("{crd_name}/{}", object.name),
                });
            }
        }
        st.effects.backend_writes += 1;
        st.touch();
        Ok(())
    }

    pub(crate) fn delete_k8s_backend_object_impl(
        &self,
        plural: &str,
        version: &str,
        name: &str,
    ) -> ClusterResult<()> {
        let mut st = self.lock();
        served(&st, plural, version)?;
        if st
            .k8s
            .objects
            .get_mut(plural)
            .and_then(|objects| objects.remove(name))
            .is_some()
        {
            st.effects.backend_writes += 1;
            st.touch();
        }
        Ok(())
    }
}
