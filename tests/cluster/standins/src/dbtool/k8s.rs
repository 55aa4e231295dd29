//! The `k8s` target of the tool: install LINSTOR's CRDs, wait until they are Established, write
//! the schema version, delete all objects (`deletecollection`, piraeus-operator#521) and create
//! one object per row, [`CONCURRENCY`] requests in flight. Runs with the credentials it is given
//! (the controller ServiceAccount's in the tests), so RBAC applies as in a real migration.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, WatchParams};
use linstor_migrator::linstor::export::Row;
use linstor_migrator::linstor::schema::{self, Table};
use serde_json::json;

use crate::backend::{self, CONCURRENCY, SCHEMA_VERSION, VERSION_OBJECT};
use crate::javalog::JavaException;

/// How long a CRD may take to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// An API error as the fabric8 client LINSTOR uses would throw it.
pub fn exception(verb: &str, what: &str, e: &kube::Error) -> JavaException {
    JavaException::new(
        "io.fabric8.kubernetes.client.KubernetesClientException",
        match e {
            kube::Error::Api(s) => format!(
                "Failure executing: {verb} at: {what}. Message: {}. Received status: Status(code={}, reason={}).",
                s.message, s.code, s.reason
            ),
            other => format!("Failure executing: {verb} at: {what}. Message: {other}."),
        },
        &[
            "io.fabric8.kubernetes.client.dsl.internal.OperationSupport.requestFailure(OperationSupport.java:660)",
            "io.fabric8.kubernetes.client.dsl.internal.OperationSupport.assertResponseCode(OperationSupport.java:640)",
            "com.linbit.linstor.dbdrivers.k8s.K8sCrdTransaction.commit(K8sCrdTransaction.java:171)",
            "com.linbit.linstor.dbcp.k8s.crd.DbK8sCrd.migrate(DbK8sCrd.java:208)",
        ],
    )
}

fn api_path(r: &kube::api::ApiResource) -> String {
    format!("/apis/{}/{}", r.api_version, r.plural)
}

/// Connects with `KUBECONFIG` or the in-cluster ServiceAccount.
pub async fn connect() -> Result<kube::Client, JavaException> {
    crate::install_crypto_provider();
    kube::Client::try_default().await.map_err(|e| {
        JavaException::new(
            "io.fabric8.kubernetes.client.KubernetesClientException",
            format!("Unable to configure the Kubernetes client: {e}"),
            &["io.fabric8.kubernetes.client.utils.HttpClientUtils.createHttpClient(HttpClientUtils.java:97)"],
        )
    })
}

/// Creates or updates every CRD, then waits until all are Established; returns how many were
/// new (a fresh backend: the real tool then also runs its CRD migrations).
pub async fn install_crds(client: &kube::Client) -> Result<usize, JavaException> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = backend::all_crds();
    let results: Vec<Result<bool, JavaException>> = futures::stream::iter(crds.iter())
        .map(|crd| create_or_replace(&api, crd))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let created = results
        .into_iter()
        .collect::<Result<Vec<bool>, _>>()?
        .into_iter()
        .filter(|new| *new)
        .count();
    for crd in &crds {
        wait_established(&api, crd.metadata.name.as_deref().unwrap_or_default()).await?;
    }
    Ok(created)
}

/// Returns whether the CRD was new.
async fn create_or_replace(
    api: &Api<CustomResourceDefinition>,
    crd: &CustomResourceDefinition,
) -> Result<bool, JavaException> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let what = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
    match api.create(&PostParams::default(), crd).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let current = api.get(&name).await.map_err(|e| exception("GET", &what, &e))?;
            let mut updated = crd.clone();
            updated.metadata.resource_version = current.metadata.resource_version;
            api.replace(&name, &PostParams::default(), &updated)
                .await
                .map_err(|e| exception("PUT", &what, &e))?;
            Ok(false)
        }
        Err(e) => Err(exception(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &e,
        )),
    }
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<(), JavaException> {
    let what = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
    let deadline = tokio::time::Instant::now() + ESTABLISH_TIMEOUT;
    loop {
        let crd = api.get(name).await.map_err(|e| exception("GET", &what, &e))?;
        if is_established(&crd) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(JavaException::new(
                "io.fabric8.kubernetes.client.KubernetesClientException",
                format!(
                    "CRD {name} was not established within {}s",
                    ESTABLISH_TIMEOUT.as_secs()
                ),
                &[
                    "io.fabric8.kubernetes.client.dsl.internal.BaseOperation.waitUntilCondition(BaseOperation.java:931)",
                ],
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes the `LinstorVersion` object and opens a watch on it, as LINSTOR's k8s database
/// does: without the `watch` right this fails like the imports of piraeus-operator#521.
pub async fn write_schema_version(client: &kube::Client) -> Result<(), JavaException> {
    let r = backend::version_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &r);
    let what = api_path(&r);
    let mut object =
        DynamicObject::new(VERSION_OBJECT, &r).data(json!({"spec": {"version": SCHEMA_VERSION}}));
    let pp = PostParams::default();
    match retry_not_found(|| api.create(&pp, &object)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let current = api
                .get(VERSION_OBJECT)
                .await
                .map_err(|e| exception("GET", &what, &e))?;
            object.metadata.resource_version = current.metadata.resource_version;
            api.replace(VERSION_OBJECT, &PostParams::default(), &object)
                .await
                .map_err(|e| exception("PUT", &what, &e))?;
        }
        Err(e) => return Err(exception("POST", &what, &e)),
    }
    let wp = WatchParams::default().timeout(1);
    // the stream is dropped at once: only the permission matters here
    api.watch(&wp, "0")
        .await
        .map(drop)
        .map_err(|e| exception("GET", &format!("{what}?watch=true"), &e))
}

/// Deletes every object of every table (not the schema version, not `Rollback` objects).
pub async fn delete_all(client: &kube::Client) -> Result<(), JavaException> {
    let results: Vec<Result<(), JavaException>> = futures::stream::iter(schema::tables())
        .map(|t| async move {
            let r = backend::table_resource(t);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &r);
            let (dp, lp) = (DeleteParams::default(), ListParams::default());
            retry_not_found(|| api.delete_collection(&dp, &lp))
                .await
                .map(drop)
                .map_err(|e| exception("DELETE", &api_path(&r), &e))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Creates the objects of `rows` (all of one table), [`CONCURRENCY`] at a time.
pub async fn create_rows(client: &kube::Client, t: &Table, rows: &[Row]) -> Result<(), JavaException> {
    let r = backend::table_resource(t);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &r);
    let (api, r) = (&api, &r);
    let results: Vec<Result<(), JavaException>> = futures::stream::iter(rows)
        .map(|row| async move {
            let object = backend::row_object(t, row);
            let pp = PostParams::default();
            retry_not_found(|| api.create(&pp, &object))
                .await
                .map(drop)
                .map_err(|e| exception("POST", &api_path(r), &e))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
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
