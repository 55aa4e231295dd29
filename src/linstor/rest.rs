//! The LINSTOR REST API (REFERENCE.md §5): the answers the service reads, a narrow trait, and a
//! reqwest client. The snapshot taken through it is [`super::snapshot`].

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/controller/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ControllerVersion {
    pub version: String,
    #[serde(default)]
    pub git_hash: String,
    #[serde(default)]
    pub build_time: String,
    #[serde(default)]
    pub rest_api_version: String,
}

/// An element of `GET /v1/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    pub name: String,
    #[serde(rename = "type")]
    pub node_type: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub props: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub net_interfaces: Vec<serde_json::Value>,
    #[serde(default)]
    pub connection_status: String,
    #[serde(default)]
    pub uuid: String,
}

/// An element of `GET /v1/view/storage-pools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoragePool {
    pub storage_pool_name: String,
    pub node_name: String,
    pub provider_kind: String,
    #[serde(default)]
    pub free_capacity: Option<i64>,
    #[serde(default)]
    pub total_capacity: Option<i64>,
    #[serde(default)]
    pub props: BTreeMap<String, String>,
    #[serde(default)]
    pub uuid: String,
}

/// `state` of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct VolumeState {
    #[serde(default)]
    pub disk_state: Option<String>,
}

/// A volume of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Volume {
    pub volume_number: i32,
    #[serde(default)]
    pub storage_pool_name: String,
    #[serde(default)]
    pub provider_kind: String,
    #[serde(default)]
    pub device_path: Option<String>,
    #[serde(default)]
    pub allocated_size_kib: Option<i64>,
    #[serde(default)]
    pub usable_size_kib: Option<i64>,
    #[serde(default)]
    pub state: VolumeState,
}

/// An element of `GET /v1/view/resources`. Its `props` are not read: nothing compares them (the
/// data verification compares every property row), and at 100k rows they were most of a
/// snapshot's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    pub name: String,
    pub node_name: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// An element of `GET /v1/error-reports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorReport {
    pub error_time: i64,
    #[serde(default)]
    pub node_name: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub module: String,
    #[serde(default)]
    pub exception: String,
    #[serde(default)]
    pub exception_message: String,
}

/// Errors of the REST client.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("LINSTOR REST API at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("LINSTOR REST API {url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("LINSTOR REST API {url} answered something unreadable: {message}")]
    Decode { url: String, message: String },
}

/// The calls the engine makes.
#[async_trait]
pub trait LinstorApi: Send + Sync {
    /// Where the API is (for messages).
    fn base_url(&self) -> String;
    async fn version(&self) -> Result<ControllerVersion, RestError>;
    async fn nodes(&self) -> Result<Vec<Node>, RestError>;
    async fn storage_pools(&self) -> Result<Vec<StoragePool>, RestError>;
    async fn resources(&self) -> Result<Vec<Resource>, RestError>;
    /// Error reports since `since_ms` (Unix milliseconds).
    async fn error_reports(&self, since_ms: i64) -> Result<Vec<ErrorReport>, RestError>;
}

/// Where and how to reach a REST API.
#[derive(Debug, Clone)]
pub struct RestEndpoint {
    pub base_url: String,
    /// PEM client certificate + key, and the CA, for https.
    pub client_identity_pem: Option<Vec<u8>>,
    pub ca_pem: Option<Vec<u8>>,
}

/// The real client over HTTP(S).
pub struct HttpLinstorApi {
    base: String,
    http: reqwest::Client,
}

impl HttpLinstorApi {
    pub fn new(endpoint: RestEndpoint) -> Result<Self, RestError> {
        let base = endpoint.base_url.trim_end_matches('/').to_string();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let bad = |message: String| RestError::Unreachable {
            url: base.clone(),
            message,
        };
        if let Some(pem) = &endpoint.client_identity_pem {
            let identity =
                reqwest::Identity::from_pem(pem).map_err(|e| bad(format!("client certificate: {e}")))?;
            builder = builder.identity(identity);
        }
        if let Some(ca) = &endpoint.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| bad(format!("CA: {e}")))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| bad(e.to_string()))?;
        Ok(Self { base, http })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, RestError> {
        let url = format!("{}{}", self.base, path);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| RestError::Unreachable {
                url: url.clone(),
                message: error_chain(&e),
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body: String = resp.text().await.unwrap_or_default().chars().take(500).collect();
            return Err(RestError::Status {
                url,
                status: status.as_u16(),
                body,
            });
        }
        resp.json().await.map_err(|e| RestError::Decode {
            url,
            message: e.to_string(),
        })
    }

    /// Pages through a list endpoint with `offset`/`limit`.
    async fn get_all<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, RestError> {
        const PAGE: usize = 500;
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        loop {
            let page: Vec<T> = self
                .get(&format!("{path}{sep}offset={}&limit={PAGE}", all.len()))
                .await?;
            let n = page.len();
            all.extend(page);
            if n < PAGE {
                return Ok(all);
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[async_trait]
impl LinstorApi for HttpLinstorApi {
    fn base_url(&self) -> String {
        self.base.clone()
    }
    async fn version(&self) -> Result<ControllerVersion, RestError> {
        self.get("/v1/controller/version").await
    }
    async fn nodes(&self) -> Result<Vec<Node>, RestError> {
        self.get_all("/v1/nodes").await
    }
    async fn storage_pools(&self) -> Result<Vec<StoragePool>, RestError> {
        self.get_all("/v1/view/storage-pools").await
    }
    async fn resources(&self) -> Result<Vec<Resource>, RestError> {
        self.get_all("/v1/view/resources").await
    }
    async fn error_reports(&self, since_ms: i64) -> Result<Vec<ErrorReport>, RestError> {
        self.get_all(&format!("/v1/error-reports?since={since_ms}")).await
    }
}
