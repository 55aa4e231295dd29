//! Direct reads of the simulated `k8s` backend's objects, page by page, as a real API server
//! answers a LIST with `limit` and `continue` (objects in name order; the token is the last name
//! of the page). A table whose CRD LINSTOR has not created yet is empty.

use super::SimCluster;
use super::faults::{Fault, api_error};
use crate::cluster::{ClusterResult, K8sBackendObject, K8sBackendPage};
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
        let Some(table) = schema::tables().iter().find(|t| t.plural() == plural) else {
            return Ok(K8sBackendPage::default());
        };
        let Some(rows) = st.k8s.tables.get(&table.name) else {
            return Ok(K8sBackendPage::default());
        };
        let limit = limit.max(1) as usize;
        let mut objects: Vec<K8sBackendObject> = rows
            .iter()
            .filter(|(name, _)| continue_token.is_none_or(|after| name.as_str() > after))
            .take(limit + 1)
            .map(|(name, row)| K8sBackendObject {
                name: name.clone(),
                spec: row
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
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
}
