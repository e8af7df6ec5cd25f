//! The SQLite backend: where the file lives, how each connection is set up (WAL, busy timeout,
//! foreign keys) and the embedded SQLite migrations. The queries themselves are in `sql.rs`.
//!
//! It must not know the schema beyond running its migrations, nor anything of PostgreSQL.

use super::StoreError;
use super::sql::{self, SqlStore};
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The scripts under `migrations/sqlite`, oldest first. Never edit one that has shipped: sqlx
/// refuses a database whose applied checksum differs. Add a new file instead.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "deploys",
        include_str!("migrations/sqlite/0002_deploys.sql"),
    ),
    (
        3,
        "chat_events",
        include_str!("migrations/sqlite/0003_chat_events.sql"),
    ),
    (
        4,
        "approvals",
        include_str!("migrations/sqlite/0004_approvals.sql"),
    ),
    (
        5,
        "bindings",
        include_str!("migrations/sqlite/0005_bindings.sql"),
    ),
];

/// How long a connection waits for another one's write lock before giving up with
/// SQLITE_BUSY. Writes are short, so this only runs out when something is badly stuck; it is
/// generous so that several ferry processes writing at once queue instead of failing.
const BUSY_TIMEOUT_MS: u32 = 30_000;

/// Connections per process. SQLite runs one writer at a time anyway; a few let reads proceed
/// beside a write under WAL.
const POOL_SIZE: u32 = 4;

/// How many times `open` tries before giving up. SQLite has no migration lock and switching a
/// fresh file to WAL cannot wait on the busy timeout, so processes opening a new file at the same
/// moment can trip over each other once; the next try finds the work done.
const OPEN_ATTEMPTS: u32 = 10;

/// `sqlite://PATH` or `sqlite:PATH` → `PATH`; `sqlite:///abs/path` gives `/abs/path`.
pub(super) fn path_of(url: &str) -> Option<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    (!path.is_empty()).then_some(path)
}

/// Opens the store in the file at `path`, creating its folder, the file and the schema as needed.
pub(super) async fn open(path: &Path) -> Result<SqlStore, StoreError> {
    sql::install_drivers();
    let file = prepare(path)?;
    let url = file_url(&file)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match connect(&url).await {
            Ok(store) => return Ok(store),
            Err(e) if attempt >= OPEN_ATTEMPTS => {
                return Err(StoreError::Unavailable(format!(
                    "cannot open the SQLite store {}: {e}",
                    file.display()
                )));
            }
            Err(e) => {
                tracing::debug!(file = %file.display(), attempt, error = %e, "retrying store open");
                // Spread racing processes apart a little so they do not collide again.
                let jitter = u64::from(std::process::id() % 16);
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt) + jitter)).await;
            }
        }
    }
}

/// Creates the folder and returns the file's absolute path with `..` resolved, so that the URL
/// handed to sqlx names exactly this file whatever the working directory.
fn prepare(path: &Path) -> Result<PathBuf, StoreError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Unavailable(format!("cannot {what} {}: {e}", path.display()))
    };
    let name = path
        .file_name()
        .ok_or_else(|| fail("use", &"the path does not name a file"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", &e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| fail("find the folder of", &e))?;
    Ok(dir.join(name))
}

/// `sqlite:///abs/path?mode=rwc`, with every byte outside a plain set percent-encoded: sqlx
/// parses the URL (where `?`, `#` and `%` mean something) and then percent-decodes the path.
fn file_url(file: &Path) -> Result<String, StoreError> {
    let text = file.to_str().ok_or_else(|| {
        StoreError::Unavailable(format!("the store path {} is not UTF-8", file.display()))
    })?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// One try at connecting, switching to WAL and migrating.
async fn connect(url: &str) -> Result<SqlStore, sqlx::Error> {
    let pool = AnyPoolOptions::new()
        .max_connections(POOL_SIZE)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // Per connection, and first, so that everything after it waits its turn.
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"
                )))
                .await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    // WAL is a property of the file, so once is enough; it lets readers run beside the writer.
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
        .fetch_one(&pool)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        pool.close().await;
        return Err(sqlx::Error::Configuration(
            format!("the file stayed in journal mode `{mode}` instead of WAL").into(),
        ));
    }
    if let Err(e) = sql::migrator(MIGRATIONS).run(&pool).await {
        pool.close().await;
        return Err(e.into());
    }
    Ok(SqlStore::new(pool, "BEGIN IMMEDIATE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_url_forms_name_a_path() {
        assert_eq!(path_of("sqlite://ferry.db"), Some("ferry.db"));
        assert_eq!(path_of("sqlite:ferry.db"), Some("ferry.db"));
        assert_eq!(
            path_of("sqlite:///var/lib/ferry/ferry.db"),
            Some("/var/lib/ferry/ferry.db")
        );
        assert_eq!(path_of("sqlite:data/ferry.db"), Some("data/ferry.db"));
        assert_eq!(path_of("sqlite://"), None);
        assert_eq!(path_of("postgres://u@h/db"), None);
        assert_eq!(path_of("ferry.db"), None);
    }

    #[test]
    fn file_urls_escape_what_urls_would_misread() {
        let url = file_url(Path::new("/tmp/a b/x?y#z%41.db")).unwrap();
        assert_eq!(url, "sqlite:///tmp/a%20b/x%3Fy%23z%2541.db?mode=rwc");
    }
}
