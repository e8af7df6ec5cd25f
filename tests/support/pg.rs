//! A scratch PostgreSQL database per test, so that tests can run in parallel and never see each
//! other's rows: `TestDatabase::create` makes a uniquely named database on the server of
//! `FERRY_TEST_PG_URL` (default `postgres://root@127.0.0.1:5432/test`), and dropping the value
//! drops the database, forcibly disconnecting whatever pool still points at it.
//!
//! It talks to PostgreSQL through sqlx's own driver, not through ferry, so that a broken store
//! cannot break its own fixture. This is the suite's only scratch-database helper: the async
//! tests call [`TestDatabase::create`], the process-level ones (no runtime of their own)
//! [`TestDatabase::create_blocking`]; test crates that need nothing else `#[path]`-include it.

#![allow(dead_code)] // Each including crate uses part of it.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The server the tests use unless `FERRY_TEST_PG_URL` names another; trust auth, loopback only.
const DEFAULT_ADMIN_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// Tells apart the databases of one test process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database that exists for as long as this value does.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database. Panics with the server's answer if it cannot: a test
    /// that silently skipped PostgreSQL would prove nothing about it.
    pub async fn create() -> TestDatabase {
        let admin_url =
            std::env::var("FERRY_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "ferry_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // CREATE DATABASE copies template1 and can trip over a concurrent one; try again.
        let mut last_error = String::new();
        for attempt in 1..=5u64 {
            match execute(&admin_url, &format!("CREATE DATABASE \"{name}\"")).await {
                Ok(()) => {
                    let url = with_database(&admin_url, &name);
                    return TestDatabase {
                        admin_url,
                        name,
                        url,
                    };
                }
                Err(e) => last_error = e,
            }
            tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
        }
        panic!("cannot create test database {name} on {admin_url}: {last_error}");
    }

    /// [`TestDatabase::create`] for callers outside any runtime (or inside one they must not
    /// block): it runs on a thread of its own with its own small runtime.
    pub fn create_blocking() -> TestDatabase {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(TestDatabase::create())
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// The URL of the new database, for `ferry::store::open`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    /// Drop runs outside async, possibly inside a runtime that must not be blocked on itself,
    /// so the DROP runs on a thread of its own with its own small runtime, and is waited for so
    /// that no database outlives the test process.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(execute(&admin_url, &sql))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: test database {} was not dropped: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Runs one statement on its own connection.
async fn execute(url: &str, sql: &str) -> Result<(), String> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    conn.execute(AssertSqlSafe(sql.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    conn.close().await.map_err(|e| e.to_string())
}

/// `postgres://u@h:5432/test?x=y` with the database `name` instead of `test`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}
