//! Browser sessions in SQLite (table `sessions`, migrations/0006_sessions.sql), so that a restart
//! of the service signs nobody out and open run pages keep following their run. The cookie
//! carries a random 256-bit id; the table keeps only its SHA-256, the actor, the session's CSRF
//! token, what it was signed in with and its expiry. The one-shot flash message for the next page
//! stays in memory: it is read by the very next request, and a restart in between only loses it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use sqlx::{Row as _, SqlitePool};
use subtle::ConstantTimeEq as _;

use crate::db::Db;
use crate::model::Actor;

/// Most sessions kept at once; those closest to expiry go first beyond it (`--auth none` starts
/// one for every browser that comes without a cookie).
const MAX_SESSIONS: i64 = 10_000;

/// Most flash messages waiting for their page.
const MAX_FLASHES: usize = 10_000;

/// A message shown once on the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: &'static str,
    pub message: String,
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            kind: "ok",
            message: message.into(),
        }
    }
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            kind: "error",
            message: message.into(),
        }
    }
}

/// What a request learns from its session cookie.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub csrf: String,
    pub actor: Actor,
    /// What the session was signed in with (see [`super::Authenticator::accepts`]).
    pub credential: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

impl SessionInfo {
    /// Time left until the session expires.
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.expires_at - now_secs()).unwrap_or(0))
    }

    /// Constant-time comparison of a submitted CSRF token with the session's.
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        !submitted.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(submitted.as_bytes()))
    }
}

/// The sessions, in the service's database.
pub struct SessionStore {
    pool: SqlitePool,
    ttl: Duration,
    flashes: Mutex<HashMap<String, Flash>>,
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl SessionStore {
    pub fn new(db: &Db, ttl: Duration) -> Self {
        Self {
            pool: db.pool().clone(),
            ttl,
            flashes: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `actor`, signed in with `credential`.
    pub async fn create(&self, actor: Actor, credential: &str) -> anyhow::Result<SessionInfo> {
        let now = now_secs();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let info = SessionInfo {
            id: random_token(),
            csrf: random_token(),
            actor,
            credential: credential.to_string(),
            expires_at: now.saturating_add(ttl),
        };
        let mut tx = self.pool.begin().await.context("failed to store the session")?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_sha256, actor, csrf, credential, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id_hash(&info.id))
        .bind(info.actor.as_str())
        .bind(&info.csrf)
        .bind(&info.credential)
        .bind(chrono::Utc::now().to_rfc3339())
        .bind(info.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM sessions WHERE id_sha256 IN \
             (SELECT id_sha256 FROM sessions ORDER BY expires_at DESC LIMIT -1 OFFSET ?)",
        )
        .bind(MAX_SESSIONS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await.context("failed to store the session")?;
        Ok(info)
    }

    /// The unexpired session `id`, whatever it was signed in with.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<SessionInfo>> {
        let row = sqlx::query(
            "SELECT actor, csrf, credential, expires_at FROM sessions WHERE id_sha256 = ? AND expires_at > ?",
        )
        .bind(id_hash(id))
        .bind(now_secs())
        .fetch_optional(&self.pool)
        .await
        .context("failed to read the session")?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(SessionInfo {
            id: id.to_string(),
            csrf: row.try_get("csrf")?,
            actor: Actor::new(row.try_get::<String, _>("actor")?),
            credential: row.try_get("credential")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    /// Ends the session `id`.
    pub async fn remove(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_sha256 = ?")
            .bind(id_hash(id))
            .execute(&self.pool)
            .await
            .context("failed to end the session")?;
        self.flashes.lock().expect("flash lock").remove(id);
        Ok(())
    }

    pub fn set_flash(&self, id: &str, flash: Flash) {
        let mut flashes = self.flashes.lock().expect("flash lock");
        if flashes.len() >= MAX_FLASHES {
            flashes.clear();
        }
        flashes.insert(id.to_string(), flash);
    }

    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.flashes.lock().expect("flash lock").remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_outlive_the_store_expire_and_keep_only_a_hash() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let store = SessionStore::new(&db, Duration::from_secs(60));
        let s = store.create(Actor::new("ops"), "token:abc").await.unwrap();

        // another store on the same database (a restarted service) knows the session
        let again = SessionStore::new(&db, Duration::from_secs(60));
        let got = again.get(&s.id).await.unwrap().expect("session");
        assert_eq!(got.actor.as_str(), "ops");
        assert_eq!(got.credential, "token:abc");
        assert!(got.csrf_matches(&s.csrf));
        assert!(!got.csrf_matches("") && !got.csrf_matches("nope"));
        let stored: Vec<String> = sqlx::query_scalar("SELECT id_sha256 FROM sessions")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(stored, [id_hash(&s.id)], "only the hash of the id is stored");
        assert_ne!(stored[0], s.id);

        store.set_flash(&s.id, Flash::ok("done"));
        assert_eq!(store.take_flash(&s.id), Some(Flash::ok("done")));
        assert_eq!(store.take_flash(&s.id), None);

        again.remove(&s.id).await.unwrap();
        assert!(store.get(&s.id).await.unwrap().is_none(), "signed out");

        let expired = SessionStore::new(&db, Duration::ZERO);
        let s = expired.create(Actor::new("ops"), "token:abc").await.unwrap();
        assert!(
            expired.get(&s.id).await.unwrap().is_none(),
            "a session with ttl 0 is expired at once"
        );
    }
}
