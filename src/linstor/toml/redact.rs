//! Redaction of `linstor.toml` before it is shown anywhere (run log, API, pages): the values of
//! keys that hold secrets become `"***"`, everything else (comments, order, paths, URLs) stays, so
//! that the text still helps to debug a configuration without leaking its credentials.

use toml_edit::{DocumentMut, Item, Table, Value};

/// What replaces a secret value.
pub const REDACTED: &str = "***";

/// Shown instead of text that does not parse: a syntax error can sit in the middle of a secret,
/// and the parser's message would quote it.
pub const UNPARSEABLE: &str = "(linstor.toml not shown: it does not parse)";

/// Parts of key names whose values are secrets (compared case-insensitively):
/// `[db] password`, `client_key_password`, `[https] keystore_password` / `truststore_password`,
/// `[encrypt] passphrase`, `[ldap] password`, and anything similar a later LINSTOR adds.
const SECRET_KEY_PARTS: &[&str] = &["password", "passphrase", "secret", "token", "credential"];

/// Returns `text` with the value of every secret-holding key replaced by `"***"`, keeping the
/// formatting; when `text` is not valid TOML, [`UNPARSEABLE`] instead of the raw text.
///
/// `client_key_pkcs8_pem` (and any other value) is redacted when it holds a PEM private key
/// instead of the usual path to one.
pub fn redact(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return UNPARSEABLE.to_string();
    };
    redact_table(doc.as_table_mut());
    doc.to_string()
}

pub(super) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// A private key pasted inline rather than referenced by path.
fn is_private_key(value: &str) -> bool {
    value.contains("-----BEGIN") && value.contains("PRIVATE KEY")
}

fn redact_table(table: &mut Table) {
    for (key, item) in table.iter_mut() {
        redact_item(is_secret_key(key.get()), item);
    }
}

fn redact_item(secret: bool, item: &mut Item) {
    match item {
        Item::None => {}
        Item::Value(value) => redact_value(secret, value),
        // a secret-named table (`[db.secret]`) has secrets for values throughout
        Item::Table(table) if secret => {
            for (_, item) in table.iter_mut() {
                redact_item(true, item);
            }
        }
        Item::Table(table) => redact_table(table),
        Item::ArrayOfTables(tables) => {
            for table in tables.iter_mut() {
                if secret {
                    for (_, item) in table.iter_mut() {
                        redact_item(true, item);
                    }
                } else {
                    redact_table(table);
                }
            }
        }
    }
}

fn redact_value(secret: bool, value: &mut Value) {
    match value {
        Value::InlineTable(table) => {
            for (key, value) in table.iter_mut() {
                redact_value(secret || is_secret_key(key.get()), value);
            }
        }
        Value::Array(array) => {
            for value in array.iter_mut() {
                redact_value(secret, value);
            }
        }
        Value::String(s) if secret || is_private_key(s.value()) => replace(value),
        _ if secret => replace(value),
        // `connection_url = "jdbc:...?password=..."`
        Value::String(s) if super::redact_url(s.value()) != *s.value() => {
            let decor = value.decor().clone();
            *value = Value::from(super::redact_url(value.as_str().unwrap_or_default()));
            *value.decor_mut() = decor;
        }
        _ => {}
    }
}

/// Replaces a value by `"***"`, keeping the spaces and the trailing comment around it.
fn replace(value: &mut Value) {
    let decor = value.decor().clone();
    *value = Value::from(REDACTED);
    *value.decor_mut() = decor;
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_SECRETS: &str = r#"# rendered by hand
[db]
  user = "linstor"
  password = "db-Pa55" # the database user's
  connection_url = "jdbc:postgresql://db:5432/linstor"
  client_key_pkcs8_pem = "/etc/linstor/certs/client.key"
  client_key_password = "key-Pa55"

[https]
  enabled = true
  keystore = "/etc/linstor/https/keystore.jks"
  keystore_password = "ks-Pa55"
  truststore = "/etc/linstor/https/truststore.jks"
  truststore_password = "ts-Pa55"

[ldap]
  enabled = true
  uri = "ldaps://ldap.example.com"
  dn = "uid={user},ou=people,dc=example,dc=com"
  password = "ldap-Pa55"

[encrypt]
  passphrase = "luks-Pa55"
"#;

    #[test]
    fn secrets_are_replaced_and_everything_else_kept() {
        let out = redact(WITH_SECRETS);
        assert!(!out.contains("Pa55"), "a secret is left: {out}");
        let doc: toml::Table = toml::from_str(&out).expect("still TOML");
        for (table, key) in [
            ("db", "password"),
            ("db", "client_key_password"),
            ("https", "keystore_password"),
            ("https", "truststore_password"),
            ("ldap", "password"),
            ("encrypt", "passphrase"),
        ] {
            assert_eq!(doc[table][key].as_str(), Some(REDACTED), "[{table}] {key}");
        }
        // what helps to debug stays as it was, formatting and comments included
        for kept in [
            "# rendered by hand",
            "  user = \"linstor\"",
            "  password = \"***\" # the database user's",
            "  connection_url = \"jdbc:postgresql://db:5432/linstor\"",
            "  client_key_pkcs8_pem = \"/etc/linstor/certs/client.key\"",
            "  keystore = \"/etc/linstor/https/keystore.jks\"",
            "  dn = \"uid={user},ou=people,dc=example,dc=com\"",
        ] {
            assert!(out.contains(kept), "{kept:?} missing from\n{out}");
        }
        assert_eq!(out.lines().count(), WITH_SECRETS.lines().count());
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        let text = "[db]\n  connection_url = \"etcd://piraeus-op-etcd:2379\" # etcd\n\n[db.etcd]\n  prefix = \"/LINSTOR/\"\n";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn secrets_in_odd_places_are_found() {
        let text = r#"db.Password = 42
[db.k8s]
nested = { secret_key = "inline-Pa55", port = 1 }
[[webUi.extra]]
api_token = "array-Pa55"
[db.secret]
anything = ["list-Pa55"]
[db2]
client_key_pkcs8_pem = """
-----BEGIN PRIVATE KEY-----
MIIpem-Pa55
-----END PRIVATE KEY-----
"""
"#;
        let out = redact(text);
        assert!(!out.contains("Pa55") && !out.contains("42"), "{out}");
        assert!(out.contains("port = 1"), "{out}");
        let doc: toml::Table = toml::from_str(&out).expect("still TOML");
        assert_eq!(doc["db"]["Password"].as_str(), Some(REDACTED));
        assert_eq!(doc["db2"]["client_key_pkcs8_pem"].as_str(), Some(REDACTED));
    }

    #[test]
    fn a_password_inside_the_connection_url_is_hidden_too() {
        let text = "[db]\nconnection_url = \"jdbc:postgresql://db/linstor?user=l&password=url-Pa55\" # sql\n";
        assert_eq!(
            redact(text),
            "[db]\nconnection_url = \"jdbc:postgresql://db/linstor?user=l&password=***\" # sql\n"
        );
    }

    #[test]
    fn unparseable_text_is_not_shown() {
        let broken = "[db]\npassword = \"unterminated-Pa55\n";
        assert_eq!(redact(broken), UNPARSEABLE);
    }
}
