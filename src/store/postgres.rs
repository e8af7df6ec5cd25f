//! The PostgreSQL backend, for several ferry processes or replicas sharing one store: URL
//! recognition, the pool and the embedded PostgreSQL migrations. The queries are in `sql.rs`.
//!
//! It must not know the schema beyond running its migrations, and must never let the URL's
//! password into an error message.

use super::sql::{self, SqlStore};
use super::{StoreError, redact_url};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, Connection};
use std::time::Duration;

/// The scripts under `migrations/postgres`, oldest first. Never edit one that has shipped: sqlx
/// refuses a database whose applied checksum differs. Add a new file instead.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "deploys",
        include_str!("migrations/postgres/0002_deploys.sql"),
    ),
    (
        3,
        "chat_events",
        include_str!("migrations/postgres/0003_chat_events.sql"),
    ),
    (
        4,
        "approvals",
        include_str!("migrations/postgres/0004_approvals.sql"),
    ),
    (
        5,
        "bindings",
        include_str!("migrations/postgres/0005_bindings.sql"),
    ),
];

/// Connections per process; ferry's queries are short.
const POOL_SIZE: u32 = 8;

/// How long to wait for a connection before reporting the store unavailable, so that a chat
/// command gets an answer rather than hanging when the database is down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `url` names a PostgreSQL database.
pub(super) fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Connects to `url` and migrates it. sqlx takes an advisory lock while migrating, so processes
/// starting together take turns.
pub(super) async fn open(url: &str) -> Result<SqlStore, StoreError> {
    sql::install_drivers();
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        let message = format!(
            "cannot {what} the PostgreSQL store {}: {e}",
            redact_url(url)
        );
        StoreError::Unavailable(scrub(&message, url))
    };
    // One plain connection first: the pool retries until its timeout and then reports only
    // "timed out", while this fails at once with the cause (refused, unknown database, auth).
    let probe = AnyConnection::connect(url)
        .await
        .map_err(|e| fail("connect to", &e))?;
    let _ = probe.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| fail("connect to", &e))?;
    if let Err(e) = sql::migrator(MIGRATIONS).run(&pool).await {
        pool.close().await;
        return Err(fail("migrate", &e));
    }
    Ok(SqlStore::new(pool, "BEGIN"))
}

/// `message` with the URL's password (as written and percent-decoded) replaced by `***`, in
/// case a driver error quotes it: `redact_url` covers the URL we print, not what sqlx prints.
fn scrub(message: &str, url: &str) -> String {
    let Some(password) = password_of(url) else {
        return message.to_string();
    };
    let mut out = message.replace(password, "***");
    let decoded = percent_decode(password);
    if !decoded.is_empty() {
        out = out.replace(&decoded, "***");
    }
    out
}

/// The password part of `scheme://user:password@host/…`, if any.
fn password_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_both_schemes() {
        assert!(is_postgres("postgres://root@127.0.0.1/test"));
        assert!(is_postgres("postgresql://root@127.0.0.1/test"));
        assert!(!is_postgres("sqlite://ferry.db"));
        assert!(!is_postgres("postgres:/nope"));
    }

    #[test]
    fn passwords_are_scrubbed_from_messages() {
        let url = "postgres://ferry:s%40cret@127.0.0.1/db";
        assert_eq!(password_of(url), Some("s%40cret"));
        assert_eq!(scrub("bad s%40cret and s@cret", url), "bad *** and ***");
        assert_eq!(password_of("postgres://ferry@127.0.0.1/db"), None);
        assert_eq!(scrub("nothing", "postgres://ferry@h/db"), "nothing");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_reported_without_the_password() {
        // Port 1 on the loopback refuses at once; nothing leaves the machine.
        let url = "postgres://ferry:hunter2@127.0.0.1:1/db?connect_timeout=1";
        let Err(err) = open(url).await else {
            panic!("connected to port 1");
        };
        let text = err.to_string();
        assert!(text.contains("ferry:***@127.0.0.1:1"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            !text.contains("timed out"),
            "the cause should be reported: {text}"
        );
    }
}
