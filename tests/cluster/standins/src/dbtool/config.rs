//! Which database `linstor.toml` names, read the way the tool reads it: only
//! `<config dir>/linstor.toml`; a missing file silently means LINSTOR's default H2 database;
//! a file that does not parse or names an unknown scheme is fatal (exit 2).

use std::path::Path;

use linstor_migrator::linstor::toml::{Backend, DEFAULT_H2_URL, LinstorConfig};

/// The database the tool will open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `etcd://host:port[,host:port]`.
    Etcd { url: String },
    /// `k8s`: the CRDs in the API server.
    K8s,
    /// An H2 file (the default when no `linstor.toml` exists).
    H2 { url: String },
    /// PostgreSQL, MariaDB, ...: not reachable from the stand-in.
    Sql { url: String },
}

impl Database {
    /// The connection URL.
    pub fn url(&self) -> &str {
        match self {
            Database::Etcd { url } | Database::H2 { url } | Database::Sql { url } => url,
            Database::K8s => "k8s",
        }
    }

    /// The log line naming the database, as LINSTOR writes it.
    pub fn url_line(&self) -> String {
        match self {
            Database::Etcd { url } => format!("etcd connection URL is \"{url}\""),
            Database::K8s => "Kubernetes-CRD connection URL is \"k8s\"".into(),
            Database::H2 { url } | Database::Sql { url } => {
                format!("SQL database connection URL is \"{url}\"")
            }
        }
    }

    /// `exported_from` of an export of this database.
    pub fn exported_from(&self) -> String {
        Backend::classify(self.url())
            .exported_from(self.url())
            .unwrap_or_else(|| "sql/unknown".into())
    }
}

/// The configuration as read: the file it came from (`None`: missing) and the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolConfig {
    pub file: Option<String>,
    pub database: Database,
}

/// Reads `linstor.toml` from `dir` (a local path); `shown_dir` is the path as given, for messages.
/// `Err` is the exit-2 case.
pub fn load(shown_dir: &str, dir: &Path) -> Result<ToolConfig, String> {
    let shown = format!("{}/linstor.toml", shown_dir.trim_end_matches('/'));
    let text = match std::fs::read_to_string(dir.join("linstor.toml")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ToolConfig {
                file: None,
                database: Database::H2 {
                    url: DEFAULT_H2_URL.into(),
                },
            });
        }
        Err(e) => return Err(format!("Unable to read configuration file \"{shown}\": {e}")),
    };
    let cfg = LinstorConfig::parse(&text)
        .map_err(|e| format!("Unable to parse configuration file \"{shown}\": {e}"))?;
    let url = cfg.effective_url().trim().to_string();
    let database = match cfg.backend() {
        Backend::Etcd => Database::Etcd { url },
        Backend::K8s => Database::K8s,
        Backend::H2 => Database::H2 { url },
        Backend::Sql => Database::Sql { url },
        Backend::Unknown => {
            return Err(format!(
                "Unsupported database connection URL \"{url}\" in \"{shown}\""
            ));
        }
    };
    Ok(ToolConfig {
        file: Some(shown),
        database,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_toml(text: Option<&str>) -> Result<ToolConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(t) = text {
            std::fs::write(dir.path().join("linstor.toml"), t).unwrap();
        }
        load("/etc/linstor", dir.path())
    }

    #[test]
    fn missing_file_is_silently_the_default_h2() {
        let cfg = with_toml(None).unwrap();
        assert_eq!(cfg.file, None);
        assert_eq!(
            cfg.database,
            Database::H2 {
                url: "jdbc:h2:/var/lib/linstor/linstordb".into()
            }
        );
        assert_eq!(cfg.database.exported_from(), "sql/h2");
    }

    #[test]
    fn backends_are_recognized() {
        let etcd = with_toml(Some("[db]\nconnection_url = \"etcd://piraeus-op-etcd:2379\"\n")).unwrap();
        assert_eq!(etcd.file.as_deref(), Some("/etc/linstor/linstor.toml"));
        assert_eq!(
            etcd.database.url_line(),
            "etcd connection URL is \"etcd://piraeus-op-etcd:2379\""
        );
        let k8s = with_toml(Some("[db]\nconnection_url = \"k8s\"\n")).unwrap();
        assert_eq!(k8s.database, Database::K8s);
        assert_eq!(k8s.database.exported_from(), "k8s");
        let pg = with_toml(Some("[db]\nconnection_url = \"jdbc:postgresql://db/linstor\"\n")).unwrap();
        assert_eq!(pg.database.exported_from(), "sql/postgresql");
    }

    #[test]
    fn bad_toml_and_unknown_schemes_are_fatal() {
        assert!(
            with_toml(Some("[db\nconnection_url="))
                .unwrap_err()
                .contains("Unable to parse")
        );
        assert!(
            with_toml(Some("[db]\nconnection_url = \"mysql://x\"\n"))
                .unwrap_err()
                .contains("Unsupported")
        );
    }
}
