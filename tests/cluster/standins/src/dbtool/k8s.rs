//! The API server as `linstor-database` reaches it: [`linstor_fake::k8s::K8sApi`] over kube-rs,
//! with the credentials the process is given (the controller ServiceAccount's in the tests), so
//! that RBAC applies as in a real migration. What the tool does with it (schema migrations,
//! truncate, one create per row, each at the release's version) is `linstor_fake::k8s::import`;
//! this file only makes the calls and turns kube's errors into the API server's [`ApiError`]s.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use linstor_fake::k8s::{ApiError, K8sApi, NOT_SERVED, V1, VERSION_OBJECT, VERSION_PLURAL, path};
use serde_json::{Value, json};

use crate::backend;

/// How long a CRD may take to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);
const CRDS_PATH: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// [`K8sApi`] over a kube-rs client.
pub struct KubeApi {
    client: kube::Client,
    server: String,
    /// The user entry of the kubeconfig's current context, if there is one.
    config_user: Option<String>,
}

/// The user entry of the current context of the kubeconfig `KUBECONFIG` names.
fn kubeconfig_user() -> Option<String> {
    let kc = kube::config::Kubeconfig::read().ok()?;
    let current = kc.current_context.clone()?;
    kc.contexts
        .iter()
        .find(|c| c.name == current)?
        .context
        .as_ref()?
        .user
        .clone()
}

impl KubeApi {
    /// Connects with `KUBECONFIG` or the in-cluster ServiceAccount; `None` when neither works
    /// (the tool then fails as with an unreachable API server).
    pub async fn connect() -> Option<Self> {
        crate::install_crypto_provider();
        let config = kube::Config::infer().await.ok()?;
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let client = kube::Client::try_from(config).ok()?;
        Some(Self {
            client,
            server,
            config_user: kubeconfig_user(),
        })
    }

    fn objects(&self, plural: &str, version: &str) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &backend::plural_resource(plural, version))
    }
}

/// The API server's answer as an [`ApiError`] of `method` on `path`.
fn api_error(method: &'static str, path: String, e: kube::Error) -> ApiError {
    match e {
        // no Status in the answer: a resource the server does not serve
        kube::Error::Api(s) if s.code == 404 && s.message.trim() == NOT_SERVED => {
            ApiError::not_served(method, path)
        }
        kube::Error::Api(s) => {
            let forbidden = (s.code == 403).then(|| {
                let (kind, group) = s
                    .details
                    .as_ref()
                    .map(|d| (d.kind.clone(), d.group.clone()))
                    .unwrap_or_default();
                Box::new((String::new(), kind, group))
            });
            ApiError {
                method,
                path,
                code: s.code,
                message: s.message,
                forbidden,
            }
        }
        other => ApiError {
            method,
            path,
            code: 500,
            message: other.to_string(),
            forbidden: None,
        },
    }
}

/// Retries `call` while it answers 404: right after a CRD is Established the API server may
/// not serve its resource yet.
async fn retry_not_found<T, F, Fut>(call: F) -> Result<T, kube::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut attempts = 0;
    loop {
        match call().await {
            Err(e) if backend::is_not_found(&e) && attempts < 40 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

#[async_trait]
impl K8sApi for KubeApi {
    fn server(&self) -> String {
        self.server.clone()
    }

    fn user(&self) -> String {
        // only the in-memory store makes up 403 messages; the API server writes its own
        String::new()
    }

    fn config_user(&self) -> String {
        self.config_user.clone().unwrap_or_default()
    }

    async fn schema_version(&self) -> Result<Option<i64>, ApiError> {
        let p = format!("{}/{VERSION_OBJECT}", path(VERSION_PLURAL, V1));
        match self.objects(VERSION_PLURAL, V1).get_opt(VERSION_OBJECT).await {
            Ok(o) => Ok(o.and_then(|o| o.data.get("spec")?.get("version")?.as_i64())),
            // no CRD yet: a fresh cluster
            Err(e) if backend::is_not_found(&e) => Ok(None),
            Err(e) => Err(api_error("GET", p, e)),
        }
    }

    async fn apply_crd(&self, crd: &Value) -> Result<(), ApiError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let path = format!("{CRDS_PATH}/{name}?fieldManager=fabric8");
        let pp = PatchParams::apply("fabric8").force();
        api.patch(&name, &pp, &Patch::Apply(crd))
            .await
            .map_err(|e| api_error("PATCH", path.clone(), e))?;
        // the tool's next calls use the new resource: wait until the API server serves it
        let deadline = tokio::time::Instant::now() + ESTABLISH_TIMEOUT;
        loop {
            let current = api
                .get(&name)
                .await
                .map_err(|e| api_error("GET", path.clone(), e))?;
            if is_established(&current) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError {
                    method: "GET",
                    path,
                    code: 504,
                    message: format!("CRD {name} was not established within 60s"),
                    forbidden: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn put_schema_version(&self, version: i64) -> Result<(), ApiError> {
        let api = self.objects(VERSION_PLURAL, V1);
        let path = path(VERSION_PLURAL, V1);
        let r = backend::resource_of(VERSION_PLURAL);
        let mut object = DynamicObject::new(VERSION_OBJECT, &r).data(json!({"spec": {"version": version}}));
        let pp = PostParams::default();
        match retry_not_found(|| api.create(&pp, &object)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let current = api
                    .get(VERSION_OBJECT)
                    .await
                    .map_err(|e| api_error("GET", path.clone(), e))?;
                object.metadata.resource_version = current.metadata.resource_version;
                api.replace(VERSION_OBJECT, &pp, &object)
                    .await
                    .map(drop)
                    .map_err(|e| api_error("PUT", path, e))
            }
            Err(e) => Err(api_error("POST", path, e)),
        }
    }

    async fn delete_collection(&self, plural: &str, version: &str) -> Result<(), ApiError> {
        let api = self.objects(plural, version);
        let (dp, lp) = (DeleteParams::default(), ListParams::default());
        retry_not_found(|| api.delete_collection(&dp, &lp))
            .await
            .map(drop)
            .map_err(|e| api_error("DELETE", path(plural, version), e))
    }

    async fn create(&self, plural: &str, version: &str, object: Value) -> Result<(), ApiError> {
        let api = self.objects(plural, version);
        let object: DynamicObject = serde_json::from_value(object).map_err(|e| ApiError {
            method: "POST",
            path: path(plural, version),
            code: 400,
            message: e.to_string(),
            forbidden: None,
        })?;
        let pp = PostParams::default();
        retry_not_found(|| api.create(&pp, &object))
            .await
            .map(drop)
            .map_err(|e| api_error("POST", path(plural, version), e))
    }

    async fn list(&self, plural: &str, version: &str) -> Result<Vec<Value>, ApiError> {
        let r = backend::plural_resource(plural, version);
        let objects = backend::list_objects(&self.client, &r)
            .await
            .map_err(|e| api_error("GET", path(plural, version), e))?
            .ok_or_else(|| ApiError::not_served("GET", path(plural, version)))?;
        Ok(objects
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_the_api_servers_words() {
        let status = kube::core::Status::failure(
            "nodes.internal.linstor.linbit.com is forbidden: User \"u\" cannot deletecollection",
            "Forbidden",
        )
        .with_code(403)
        .boxed();
        let e = api_error("DELETE", "/apis/x".into(), kube::Error::Api(status));
        assert_eq!((e.method, e.code), ("DELETE", 403));
        assert!(e.message.contains("cannot deletecollection"));
        assert!(e.forbidden.is_some());
        let plain = kube::core::Status::failure("404 page not found\n", "Failed to parse error data")
            .with_code(404)
            .boxed();
        let e = api_error("DELETE", "/apis/x".into(), kube::Error::Api(plain));
        assert_eq!(e, ApiError::not_served("DELETE", "/apis/x".into()));
    }
}
