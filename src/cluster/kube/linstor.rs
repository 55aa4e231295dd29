//! The LINSTOR REST client for a controller: its in-cluster Service (or an override URL), over
//! https with the client certificate Secret when the controller requires one.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::KubeOptions;
use super::errors::map_kube_error;
use super::reads::get_optional;
use crate::cluster::{ClusterError, ClusterResult};
use crate::linstor::rest::{HttpLinstorApi, LinstorApi, RestEndpoint};

/// Ports of the controller's REST API (REFERENCE.md §2).
const HTTP_PORT: u16 = 3370;
const HTTPS_PORT: u16 = 3371;

/// The base URL: the override when set, else the Service's cluster DNS name.
pub(super) fn base_url(options: &KubeOptions, ns: &str, service: &str, https: bool) -> String {
    match &options.linstor_url_override {
        Some(url) => url.trim_end_matches('/').to_string(),
        None if https => format!("https://{service}.{ns}.svc:{HTTPS_PORT}"),
        None => format!("http://{service}.{ns}.svc:{HTTP_PORT}"),
    }
}

/// The client identity (`tls.crt` then `tls.key`, one PEM bundle) and the CA (`ca.crt`, if
/// present) from a `kubernetes.io/tls`-style Secret. Errors name missing keys, never contents.
pub(super) fn tls_material(secret: &Secret) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let data = secret.data.as_ref();
    let get = |key: &str| {
        data.and_then(|d| d.get(key))
            .map(|v| v.0.clone())
            .filter(|v| !v.is_empty())
    };
    let (Some(cert), Some(key)) = (get("tls.crt"), get("tls.key")) else {
        return Err("it needs the keys tls.crt and tls.key".into());
    };
    let mut identity = cert;
    if identity.last() != Some(&b'\n') {
        identity.push(b'\n');
    }
    identity.extend_from_slice(&key);
    Ok((identity, get("ca.crt")))
}

/// Builds the client; see [`crate::cluster::Cluster::linstor_api`].
pub(super) async fn linstor_api(
    client: &kube::Client,
    options: &KubeOptions,
    ns: &str,
    service: &str,
    https_client_secret: Option<&str>,
) -> ClusterResult<Arc<dyn LinstorApi>> {
    let mut endpoint = RestEndpoint {
        base_url: base_url(options, ns, service, https_client_secret.is_some()),
        client_identity_pem: None,
        ca_pem: None,
    };
    if let Some(name) = https_client_secret {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let secret = get_optional(&api, name)
            .await
            .map_err(|e| map_kube_error("get", "Secret", ns, name, e))?
            .ok_or_else(|| ClusterError::NotFound {
                kind: "Secret",
                namespace: ns.to_string(),
                name: name.to_string(),
            })?;
        let (identity, ca) = tls_material(&secret)
            .map_err(|m| ClusterError::Api(format!("LINSTOR client certificate Secret {ns}/{name}: {m}")))?;
        endpoint.client_identity_pem = Some(identity);
        endpoint.ca_pem = ca;
    }
    let api = HttpLinstorApi::new(endpoint).map_err(|e| ClusterError::Api(e.to_string()))?;
    Ok(Arc::new(api))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn urls_follow_the_service_unless_overridden() {
        let none = KubeOptions::default();
        assert_eq!(
            base_url(&none, "piraeus", "piraeus-op-cs", false),
            "http://piraeus-op-cs.piraeus.svc:3370"
        );
        assert_eq!(
            base_url(&none, "piraeus", "piraeus-op-cs", true),
            "https://piraeus-op-cs.piraeus.svc:3371"
        );
        let over = KubeOptions {
            linstor_url_override: Some("http://127.0.0.1:8080/".into()),
            ..KubeOptions::default()
        };
        assert_eq!(
            base_url(&over, "piraeus", "piraeus-op-cs", true),
            "http://127.0.0.1:8080"
        );
    }

    fn secret(keys: &[(&str, &str)]) -> Secret {
        let data: BTreeMap<String, ByteString> = keys
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
        Secret {
            data: Some(data),
            ..Secret::default()
        }
    }

    #[test]
    fn identity_is_certificate_then_key() {
        let s = secret(&[("tls.crt", "CERT"), ("tls.key", "KEY\n"), ("ca.crt", "CA")]);
        let (identity, ca) = tls_material(&s).expect("complete secret");
        assert_eq!(identity, b"CERT\nKEY\n");
        assert_eq!(ca.as_deref(), Some(&b"CA"[..]));
    }

    #[test]
    fn missing_keys_are_named_without_contents() {
        let err = tls_material(&secret(&[("tls.crt", "SECRET-CERT")])).unwrap_err();
        assert!(err.contains("tls.key") && !err.contains("SECRET-CERT"));
    }
}
