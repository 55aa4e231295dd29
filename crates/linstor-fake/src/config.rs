//! How the tool and the controller read `<config dir>/linstor.toml`: only `[db]
//! connection_url` matters to them here; a missing file silently means LINSTOR's built-in H2
//! database (recorded: tool/08 of both releases), a file that does not parse is fatal.

/// LINSTOR's default when no `connection_url` is configured.
pub const DEFAULT_H2_URL: &str = "jdbc:h2:/var/lib/linstor/linstordb";

/// The database a `connection_url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `etcd://host:port[,host:port]`.
    Etcd(String),
    /// `k8s`.
    K8s,
    /// `jdbc:h2:...` (the default without a config).
    H2(String),
    /// Any other `jdbc:` URL.
    Sql(String),
}

impl Database {
    /// Classifies a `connection_url`; `None` for a scheme LINSTOR does not know.
    pub fn of_url(url: &str) -> Option<Self> {
        let u = url.trim();
        let lower = u.to_ascii_lowercase();
        Some(if lower == "k8s" {
            Database::K8s
        } else if lower.starts_with("etcd://") {
            Database::Etcd(u.into())
        } else if lower.starts_with("jdbc:h2:") {
            Database::H2(u.into())
        } else if lower.starts_with("jdbc:") {
            Database::Sql(u.into())
        } else {
            return None;
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            Database::Etcd(u) | Database::H2(u) | Database::Sql(u) => u,
            Database::K8s => "k8s",
        }
    }

    /// `exported_from` of an export of this database.
    pub fn exported_from(&self) -> String {
        match self {
            Database::Etcd(_) => "etcd".into(),
            Database::K8s => "k8s".into(),
            Database::H2(_) => "sql/h2".into(),
            Database::Sql(u) => format!(
                "sql/{}",
                u.strip_prefix("jdbc:")
                    .and_then(|r| r.split(':').next())
                    .unwrap_or("unknown")
            ),
        }
    }
}

/// `[db] connection_url` of a `linstor.toml` text (`None`: not set); `Err` when the text is not
/// TOML or the URL is not a string.
pub fn connection_url(text: &str) -> Result<Option<String>, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    match doc.get("db").and_then(|d| d.get("connection_url")) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("[db] connection_url must be a string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_configs() {
        assert_eq!(Database::of_url("k8s"), Some(Database::K8s));
        assert_eq!(
            Database::of_url("jdbc:postgresql://db/linstor")
                .unwrap()
                .exported_from(),
            "sql/postgresql"
        );
        assert_eq!(Database::of_url("mysql://x"), None);
        assert_eq!(
            connection_url("[db]\n  connection_url = \"etcd://a:2379\"\n")
                .unwrap()
                .as_deref(),
            Some("etcd://a:2379")
        );
        assert_eq!(connection_url("[http]\nport = 3370\n").unwrap(), None);
        assert!(connection_url("[db").is_err());
    }
}
