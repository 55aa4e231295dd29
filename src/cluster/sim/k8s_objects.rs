//! Direct reads and writes of the simulated `k8s` backend's objects: LISTs page by page as a real
//! API server answers them with `limit` and `continue` (objects in name order; the token is the
//! last name of the page), creates, whole-`spec` replaces and deletes of single objects. A table
//! whose CRD LINSTOR has not created yet is empty, and cannot be written (404, as for a real
//! missing CRD).

use super::SimCluster;
use super::faults::{Fault, api_error};
use crate::cluster::{ClusterError, ClusterResult, K8sBackendObject, K8sBackendPage};
use crate::linstor::schema;
use crate::model::StepName;

impl SimCluster {
    pub(crate) fn list_k8s_backend_page_impl(
        &self,
        plural: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> ClusterResult<K8sBackendPage> {
        let mut st = self.lock();
        // direct reads belong to the data verification (an `Error` fault: the API server fails)
        if st.faults.take(StepName::VerifyData, &[Fault::Error]).is_some() {
            return Err(api_error(StepName::VerifyData, "list k8s backend objects"));
        }
        if !st
            .k8s
            .crds
            .contains_key(&format!("{plural}.{}", schema::K8S_GROUP))
        {
            return Ok(K8sBackendPage::default());
        }
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

    fn table_of(plural: &str) -> ClusterResult<&'static schema::Table> {
        schema::tables()
            .iter()
            .find(|t| t.plural() == plural)
            .ok_or_else(|| ClusterError::NotFound {
                kind: "CustomResourceDefinition",
                namespace: String::new(),
                name: format!("{plural}.{}", schema::K8S_GROUP),
            })
    }

    /// A `PartialImport` fault at `Import` makes one direct write of the delta import vanish
    /// (accepted, not stored): a difference only the verification can find.
    fn lose_write(st: &mut super::state::State) -> bool {
        st.lose_backend_write()
    }

    pub(crate) fn create_k8s_backend_object_impl(
        &self,
        plural: &str,
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        let table = Self::table_of(plural)?;
        let mut st = self.lock();
        if Self::lose_write(&mut st) {
            return Ok(());
        }
        let object_json = serde_json::json!({
            "apiVersion": format!("{}/{}", schema::K8S_GROUP, schema::DATA_VERSION),
            "kind": table.crd_kind,
            "metadata": {"name": object.name},
            "spec": object.spec,
        });
        match st.k8s.create(plural, object_json) {
            Ok(()) => {}
            Err(409) => {
                return Err(ClusterError::AlreadyExists(format!(
                    "{}/{}",
                    table.crd_name, object.name
                )));
            }
            Err(_) => {
                return Err(ClusterError::NotFound {
                    kind: "CustomResourceDefinition",
                    namespace: String::new(),
                    name: table.crd_name.clone(),
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
        object: &K8sBackendObject,
    ) -> ClusterResult<()> {
        let table = Self::table_of(plural)?;
        let mut st = self.lock();
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
                    name: format!("{}/{}", table.crd_name, object.name),
                });
            }
        }
        st.effects.backend_writes += 1;
        st.touch();
        Ok(())
    }

    pub(crate) fn delete_k8s_backend_object_impl(&self, plural: &str, name: &str) -> ClusterResult<()> {
        Self::table_of(plural)?;
        let mut st = self.lock();
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
