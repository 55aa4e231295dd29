//! `linstor.toml` (REFERENCE.md §4): parse it with a real TOML parser, classify the database
//! backend, and write the target configuration with `[db]` replaced by `connection_url = "k8s"`
//! (edited with toml_edit so that comments and every other section survive), and show it without
//! its secrets ([`redact`]).

mod redact;
mod redact_url;

pub use redact::{REDACTED, UNPARSEABLE, redact};
pub use redact_url::redact_url;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The database backend a `connection_url` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Etcd,
    K8s,
    Sql,
    H2,
    Unknown,
}

impl Backend {
    /// Classifies a LINSTOR `connection_url`.
    pub fn classify(url: &str) -> Backend {
        let u = url.trim();
        let lower = u.to_ascii_lowercase();
        if lower == "k8s" {
            Backend::K8s
        } else if lower.starts_with("etcd://") {
            Backend::Etcd
        } else if lower.starts_with("jdbc:h2:") {
            Backend::H2
        } else if lower.starts_with("jdbc:") {
            Backend::Sql
        } else {
            Backend::Unknown
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Etcd => "etcd",
            Backend::K8s => "k8s",
            Backend::Sql => "sql",
            Backend::H2 => "h2",
            Backend::Unknown => "unknown",
        }
    }

    /// The `exported_from` an export of this backend carries (`sql/<type>` for SQL).
    pub fn exported_from(self, url: &str) -> Option<String> {
        match self {
            Backend::Etcd => Some("etcd".into()),
            Backend::K8s => Some("k8s".into()),
            Backend::H2 => Some("sql/h2".into()),
            Backend::Sql => url
                .strip_prefix("jdbc:")
                .and_then(|r| r.split(':').next())
                .map(|t| format!("sql/{t}")),
            Backend::Unknown => None,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the service needs to know of a `linstor.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct LinstorConfig {
    /// `[db] connection_url`; LINSTOR's default (H2) when absent.
    pub connection_url: Option<String>,
    /// `[db] ca_certificate`, `client_certificate`, `client_key_pkcs8_pem`: files the tool must see.
    pub db_cert_files: Vec<String>,
    /// `[https] keystore` / `truststore` when https is configured.
    pub https_files: Vec<String>,
    pub http_enabled: Option<bool>,
    pub http_port: Option<u16>,
    pub https_enabled: Option<bool>,
    pub https_port: Option<u16>,
    /// `[db.etcd] prefix`.
    pub etcd_prefix: Option<String>,
}

/// LINSTOR's built-in default when no connection_url is configured (REFERENCE.md §3).
pub const DEFAULT_H2_URL: &str = "jdbc:h2:/var/lib/linstor/linstordb";

impl LinstorConfig {
    /// Parses `linstor.toml` text; a TOML syntax error is an error (the tool would exit 2).
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: toml::Table =
            toml::from_str(text).map_err(|e| format!("linstor.toml is not valid TOML: {e}"))?;
        let table = |name: &str| doc.get(name).and_then(|v| v.as_table());
        let string = |t: Option<&toml::Table>, key: &str| {
            t.and_then(|t| t.get(key))
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        let boolean =
            |t: Option<&toml::Table>, key: &str| t.and_then(|t| t.get(key)).and_then(|v| v.as_bool());
        let port = |t: Option<&toml::Table>| {
            t.and_then(|t| t.get("port"))
                .and_then(|v| v.as_integer())
                .and_then(|p| u16::try_from(p).ok())
        };
        let db = table("db");
        if let Some(v) = db.and_then(|d| d.get("connection_url"))
            && !v.is_str()
        {
            return Err("[db] connection_url must be a string".into());
        }
        let db_cert_files = ["ca_certificate", "client_certificate", "client_key_pkcs8_pem"]
            .iter()
            .filter_map(|k| string(db, k))
            .collect();
        let https = table("https");
        let https_files = ["keystore", "truststore"]
            .iter()
            .filter_map(|k| string(https, k))
            .collect();
        let etcd = db.and_then(|d| d.get("etcd")).and_then(|v| v.as_table());
        Ok(Self {
            connection_url: string(db, "connection_url"),
            db_cert_files,
            https_files,
            http_enabled: boolean(table("http"), "enabled"),
            http_port: port(table("http")),
            https_enabled: boolean(https, "enabled"),
            https_port: port(https),
            etcd_prefix: string(etcd, "prefix"),
        })
    }

    /// The URL LINSTOR will actually use.
    pub fn effective_url(&self) -> &str {
        self.connection_url.as_deref().unwrap_or(DEFAULT_H2_URL)
    }

    pub fn backend(&self) -> Backend {
        Backend::classify(self.effective_url())
    }
}

/// Returns `original` with its `[db]` table replaced by `connection_url = "k8s"`, keeping a
/// `[db.k8s]` sub-table if present; comments, order and every other section are kept.
pub fn target_config(original: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = original
        .parse()
        .map_err(|e| format!("linstor.toml is not valid TOML: {e}"))?;
    let k8s_sub = doc
        .get("db")
        .and_then(|d| d.as_table_like())
        .and_then(|d| d.get("k8s"))
        .cloned();
    let mut db = toml_edit::Table::new();
    db.insert("connection_url", toml_edit::value("k8s"));
    if let Some(sub) = k8s_sub {
        db.insert("k8s", sub);
    }
    if let Some(old) = doc.get("db").and_then(|d| d.as_table()) {
        // keep the comment above the old [db] header
        db.decor_mut().clone_from(old.decor());
        db.set_position(old.position());
    }
    doc.insert("db", toml_edit::Item::Table(db));
    Ok(doc.to_string())
}

/// Returns `original` with `[db] connection_url` set to `url` (used for controllers without a
/// LinstorController, whose ConfigMap is edited directly), keeping everything else.
pub fn with_connection_url(original: &str, url: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = original
        .parse()
        .map_err(|e| format!("linstor.toml is not valid TOML: {e}"))?;
    if !doc.contains_table("db") {
        doc.insert("db", toml_edit::Item::Table(toml_edit::Table::new()));
    }
    let db = doc["db"].as_table_mut().ok_or("[db] is not a table")?;
    match db.get_mut("connection_url").and_then(|i| i.as_value_mut()) {
        // keep the key's indentation and trailing comment
        Some(v) => {
            let decor = v.decor().clone();
            *v = toml_edit::Value::from(url);
            *v.decor_mut() = decor;
        }
        None => {
            db.insert("connection_url", toml_edit::value(url));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPERATOR_ETCD_TLS: &str = r#"# rendered by piraeus-operator
[db]
  connection_url = "etcd://piraeus-op-etcd:2379"
  ca_certificate = "/etc/linstor/certs/ca.pem"
  client_certificate = "/etc/linstor/certs/client.cert"
  client_key_pkcs8_pem = "/etc/linstor/certs/client.key"

  [db.etcd]
    prefix = "/LINSTOR/"

[http]
  enabled = true
  listen_addr = "0.0.0.0"
  port = 3370

[https]
  enabled = true
  keystore = "/etc/linstor/https/keystore.jks"
  port = 3371

# logging is kept
[logging]
  level = "info"
"#;

    #[test]
    fn classifies_every_url_kind() {
        let cases = [
            ("etcd://piraeus-op-etcd:2379", Backend::Etcd),
            ("etcd://a:2379,b:2379,c:2379", Backend::Etcd),
            ("k8s", Backend::K8s),
            ("jdbc:postgresql://db:5432/linstor", Backend::Sql),
            ("jdbc:mariadb://db/linstor", Backend::Sql),
            ("jdbc:h2:/var/lib/linstor/linstordb", Backend::H2),
            ("mysql://x", Backend::Unknown),
            ("", Backend::Unknown),
        ];
        for (url, want) in cases {
            assert_eq!(Backend::classify(url), want, "{url}");
            let cfg = LinstorConfig::parse(&format!("[db]\nconnection_url = {url:?}\n")).unwrap();
            assert_eq!(cfg.backend(), want, "{url}");
        }
        assert_eq!(
            Backend::Sql.exported_from("jdbc:postgresql://db/x").as_deref(),
            Some("sql/postgresql")
        );
        assert_eq!(Backend::Etcd.exported_from("etcd://x").as_deref(), Some("etcd"));
    }

    #[test]
    fn missing_url_means_default_h2() {
        let cfg = LinstorConfig::parse("[http]\nenabled = true\n").unwrap();
        assert_eq!(cfg.connection_url, None);
        assert_eq!(cfg.backend(), Backend::H2);
        assert_eq!(cfg.effective_url(), DEFAULT_H2_URL);
    }

    #[test]
    fn reads_cert_settings_and_ports() {
        let cfg = LinstorConfig::parse(OPERATOR_ETCD_TLS).unwrap();
        assert_eq!(cfg.backend(), Backend::Etcd);
        assert_eq!(
            cfg.db_cert_files,
            [
                "/etc/linstor/certs/ca.pem",
                "/etc/linstor/certs/client.cert",
                "/etc/linstor/certs/client.key"
            ]
        );
        assert_eq!(cfg.https_files, ["/etc/linstor/https/keystore.jks"]);
        assert_eq!(
            (cfg.http_port, cfg.https_port, cfg.https_enabled),
            (Some(3370), Some(3371), Some(true))
        );
        assert_eq!(cfg.etcd_prefix.as_deref(), Some("/LINSTOR/"));
    }

    #[test]
    fn rejects_invalid_toml_and_wrong_types() {
        assert!(
            LinstorConfig::parse("[db\nconnection_url=")
                .unwrap_err()
                .contains("not valid TOML")
        );
        assert!(LinstorConfig::parse("[db]\nconnection_url = 5\n").is_err());
        assert!(target_config("[db\n").is_err());
    }

    #[test]
    fn target_replaces_db_and_keeps_the_rest() {
        let out = target_config(OPERATOR_ETCD_TLS).unwrap();
        let cfg = LinstorConfig::parse(&out).unwrap();
        assert_eq!(cfg.connection_url.as_deref(), Some("k8s"));
        assert!(cfg.db_cert_files.is_empty(), "etcd TLS settings must go: {out}");
        assert_eq!(cfg.etcd_prefix, None);
        assert!(out.contains("# rendered by piraeus-operator"));
        assert!(out.contains("# logging is kept"));
        assert!(out.contains("listen_addr = \"0.0.0.0\""));
        assert!(out.contains("keystore = \"/etc/linstor/https/keystore.jks\""));
        // [db] stays where it was, before [http]
        assert!(out.find("[db]").unwrap() < out.find("[http]").unwrap(), "{out}");
    }

    #[test]
    fn target_keeps_k8s_subtable_and_adds_db_when_missing() {
        let out = target_config("[db]\nconnection_url = \"etcd://x:2379\"\n[db.k8s]\nrequest_retries = 5\n")
            .unwrap();
        let v: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(v["db"]["connection_url"].as_str(), Some("k8s"));
        assert_eq!(v["db"]["k8s"]["request_retries"].as_integer(), Some(5));
        let out = target_config("[http]\nport = 3370\n").unwrap();
        assert_eq!(LinstorConfig::parse(&out).unwrap().backend(), Backend::K8s);
    }

    #[test]
    fn connection_url_edit_keeps_everything_else() {
        let out = with_connection_url(OPERATOR_ETCD_TLS, "k8s").unwrap();
        let cfg = LinstorConfig::parse(&out).unwrap();
        assert_eq!(cfg.connection_url.as_deref(), Some("k8s"));
        assert_eq!(cfg.db_cert_files.len(), 3);
        let back = with_connection_url(&out, "etcd://piraeus-op-etcd:2379").unwrap();
        assert_eq!(back, OPERATOR_ETCD_TLS);
    }
}
