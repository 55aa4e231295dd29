//! The configured bearer tokens of `--auth token` (`LINSTOR_MIGRATOR_TOKEN`) and the metrics
//! token (`LINSTOR_MIGRATOR_METRICS_TOKEN`): parsing, the minimum strength every configured token
//! must have, and the fingerprint a browser session keeps of the token it was signed in with.

use sha2::{Digest as _, Sha256};

use super::super::TOKEN_ENV;

/// Fewest characters a configured token may have.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Fewest different characters a configured token may have (`aaaa...` is no secret).
pub const MIN_DISTINCT_CHARS: usize = 4;

/// Parses `token` or `name:token,name:token` (a bare token is the actor `admin`) and checks
/// each token's strength.
pub fn parse_tokens(spec: &str) -> anyhow::Result<Vec<(String, String)>> {
    let items: Vec<&str> = spec.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let tokens: Vec<(String, String)> = if let [single] = items.as_slice()
        && !single.contains(':')
    {
        vec![("admin".into(), single.to_string())]
    } else {
        items
            .iter()
            .map(|item| match item.split_once(':') {
                Some((name, token)) if !name.is_empty() && !token.is_empty() => {
                    Ok((name.to_string(), token.to_string()))
                }
                _ => anyhow::bail!("{TOKEN_ENV} must be a token or NAME:TOKEN pairs separated by commas"),
            })
            .collect::<anyhow::Result<_>>()?
    };
    for (name, token) in &tokens {
        check_strength(token, &format!("{TOKEN_ENV} (--token): the token of {name:?}"))?;
    }
    Ok(tokens)
}

/// Refuses a token a person could guess: fewer than [`MIN_TOKEN_CHARS`] characters, or fewer
/// than [`MIN_DISTINCT_CHARS`] different ones. `what` names it in the error.
pub fn check_strength(token: &str, what: &str) -> anyhow::Result<()> {
    let chars = token.chars().count();
    let mut distinct: Vec<char> = token.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if chars < MIN_TOKEN_CHARS || distinct.len() < MIN_DISTINCT_CHARS {
        anyhow::bail!(
            "{what} is too weak: {chars} characters, {} different; a token needs at least \
             {MIN_TOKEN_CHARS} characters and {MIN_DISTINCT_CHARS} different ones. Generate one with \
             `openssl rand -hex 24`, or leave {TOKEN_ENV} unset and the service generates one",
            distinct.len()
        );
    }
    Ok(())
}

/// What a session signed in with the token of `name` records: a short hash of both, so that the
/// session ends when that token is no longer configured (rotated, or given to another name),
/// without the database holding the token. (Also used for the access question of
/// `--auth kubernetes`.)
pub fn fingerprint(name: &str, token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"linstor-migrator session credential\0");
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update(token.as_bytes());
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse() {
        let strong = "s3cret-s3cret-s3cret";
        assert_eq!(
            parse_tokens(strong).unwrap(),
            vec![("admin".into(), strong.into())]
        );
        assert_eq!(
            parse_tokens("ops:0123456789abcdef, ci-bot:fedcba9876543210x").unwrap(),
            vec![
                ("ops".into(), "0123456789abcdef".into()),
                ("ci-bot".into(), "fedcba9876543210x".into())
            ]
        );
        assert!(parse_tokens("ops:0123456789abcdef,b").is_err());
    }

    #[test]
    fn weak_tokens_are_refused_with_a_clear_error() {
        for weak in [
            "x",
            "short-token",
            "ops:x",
            "aaaaaaaaaaaaaaaaaaaaaaa",
            "ops:0123456789abcdef,ci:abc",
        ] {
            let err = parse_tokens(weak).unwrap_err().to_string();
            assert!(
                err.contains("too weak") && err.contains("at least 16 characters"),
                "{weak}: {err}"
            );
        }
        let err = parse_tokens("ci:abc").unwrap_err().to_string();
        assert!(
            err.contains("the token of \"ci\"") && err.contains("3 characters"),
            "{err}"
        );
        // a generated token passes
        let generated = hex::encode(rand::random::<[u8; 24]>());
        assert!(parse_tokens(&generated).is_ok());
    }

    #[test]
    fn a_fingerprint_names_the_token_and_its_name() {
        let a = fingerprint("ops", "0123456789abcdef");
        assert_eq!(a, fingerprint("ops", "0123456789abcdef"));
        assert_ne!(a, fingerprint("ops", "0123456789abcdeF"));
        assert_ne!(a, fingerprint("admin", "0123456789abcdef"));
        assert!(!a.contains("0123456789abcdef"));
    }
}
