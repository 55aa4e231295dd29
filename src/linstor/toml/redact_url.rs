//! Redaction of a database connection URL before it is shown anywhere (API, pages, run log,
//! service log, CLI): an SQL URL may carry a password, in its user information
//! (`jdbc:postgresql://linstor:secret@db/linstor`) or in a parameter
//! (`jdbc:mariadb://db/linstor?user=linstor&password=secret`, H2's `;PASSWORD=secret`). What is
//! left still tells which database it is. The URL itself is kept as it is wherever it is used
//! (restored by a rollback, compared), never shown.
//!
//! Not the `url` crate: `jdbc:postgresql://...` and H2's `;KEY=value` parameters are not URLs
//! it parses as such.

use super::redact::{REDACTED, is_secret_key};

/// Parameter names that hold a secret beyond [`is_secret_key`]'s (`pwd` for SQL Server and
/// ODBC-style URLs, `passwd`).
const MORE_SECRET_KEYS: &[&str] = &["pwd", "passwd"];

/// `url` with its user information and the values of password-like parameters replaced by
/// `***`. Text that is not a URL comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // the authority ends where the path or the parameters begin
    let end = rest.find(['/', '?', ';', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) if !head.is_empty() => format!("{REDACTED}{}", &authority[at..]),
        _ => authority.to_string(),
    };
    format!("{head}{authority}{}", redact_parameters(tail))
}

fn is_secret_parameter(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    is_secret_key(&key) || MORE_SECRET_KEYS.contains(&key.as_str())
}

/// `key=value` pieces after `?`, `&` or `;`, with secret values replaced.
fn redact_parameters(tail: &str) -> String {
    let mut out = String::with_capacity(tail.len());
    let mut rest = tail;
    // the text before the first separator (a path) is kept
    let first = rest.find(['?', '&', ';']).unwrap_or(rest.len());
    out.push_str(&rest[..first]);
    rest = &rest[first..];
    while let Some(separator) = rest.chars().next() {
        out.push(separator);
        rest = &rest[separator.len_utf8()..];
        let end = rest.find(['?', '&', ';', '#']).unwrap_or(rest.len());
        let piece = &rest[..end];
        match piece.split_once('=') {
            Some((key, _)) if is_secret_parameter(key) => {
                out.push_str(key);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(piece),
        }
        rest = &rest[end..];
        if rest.starts_with('#') {
            out.push_str(rest);
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_information_and_parameters_are_hidden() {
        for (url, shown) in [
            (
                "jdbc:postgresql://linstor:s3cret@db.example:5432/linstor",
                "jdbc:postgresql://***@db.example:5432/linstor",
            ),
            (
                "jdbc:mariadb://db/linstor?user=linstor&password=s3cret&useSSL=true",
                "jdbc:mariadb://db/linstor?user=linstor&password=***&useSSL=true",
            ),
            (
                "jdbc:postgresql://db/linstor?PassWord=a=b&ssl=true",
                "jdbc:postgresql://db/linstor?PassWord=***&ssl=true",
            ),
            (
                "jdbc:h2:/var/lib/linstor/linstordb;USER=sa;PASSWORD=s3cret;CIPHER=AES",
                "jdbc:h2:/var/lib/linstor/linstordb;USER=sa;PASSWORD=***;CIPHER=AES",
            ),
            (
                "jdbc:sqlserver://db;user=linstor;pwd=s3cret",
                "jdbc:sqlserver://db;user=linstor;pwd=***",
            ),
            ("etcd://root:s3cret@etcd:2379", "etcd://***@etcd:2379"),
            (
                "https://token@host/x?access_token=abc#frag",
                "https://***@host/x?access_token=***#frag",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret"));
        }
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "k8s",
            "etcd://piraeus-op-etcd:2379",
            "etcd://etcd-0:2379,etcd-1:2379",
            "jdbc:h2:/var/lib/linstor/linstordb",
            "jdbc:postgresql://db:5432/linstor?user=linstor&ssl=true",
            "",
            "not a url at all",
            "user@host",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
