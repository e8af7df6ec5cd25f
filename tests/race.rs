//! Racing writers never lose a change: 8 `ferry run` processes started at once,
//! each setting a different key of the same service of one environment, all succeed; the
//! environment then has exactly seed + 8 revisions, numbered without gaps, each the parent of
//! the next, each carrying exactly one of the 8 changes, and the head holds all 8 keys. Run on
//! SQLite (an existing file, and a file that does not exist yet, so that creating, migrating and
//! seeding race too) and on a fresh PostgreSQL database.

mod common;
#[path = "support/pg.rs"]
mod pg;

use common::{Fixture, Run, runtime, table_rows};
use ferry::domain::{AuditFilter, Name, Outcome};
use pg::TestDatabase;
use std::collections::BTreeSet;
use std::time::Duration;

const WRITERS: usize = 8;

fn key(i: usize) -> String {
    format!("K{i}")
}

fn value(i: usize) -> String {
    format!("v{i}")
}

fn command(i: usize) -> String {
    format!("env staging.ms-users.config.{} {}", key(i), value(i))
}

/// Starts every writer before waiting for any, and returns their results in order.
fn race(fixture: &Fixture) -> Vec<Run> {
    let children: Vec<_> = (1..=WRITERS)
        .map(|i| (command(i), fixture.spawn("alice", &command(i))))
        .collect();
    children
        .into_iter()
        .map(|(cmd, child)| Run::wait(child, &cmd, Duration::from_secs(90)))
        .collect()
}

/// `staging@N: ms-users.config.Ki (none) → vi` → N.
fn revision_in_headline(run: &Run, i: usize) -> u64 {
    let headline = run.headline();
    let expected_change = format!("ms-users.config.{} (none) → {}", key(i), value(i));
    let Some((label, change)) = headline.split_once(": ") else {
        panic!(
            "`{}`: headline is not `<env>@<n>: <change>`:\n{run}",
            run.command
        );
    };
    assert_eq!(change, expected_change, "`{}`:\n{run}", run.command);
    let number = label
        .strip_prefix("staging@")
        .and_then(|n| n.parse::<u64>().ok());
    number.unwrap_or_else(|| panic!("`{}`: no new revision in `{headline}`", run.command))
}

/// Runs the race against `fixture` and checks everything the store promises about racing writers.
fn check_race(fixture: &Fixture) {
    let runs = race(fixture);

    // Every writer succeeded, each with its own new revision.
    let mut numbers = Vec::new();
    for (i, run) in (1..=WRITERS).zip(&runs) {
        assert_eq!(run.code, 0, "writer {i} failed:\n{run}");
        numbers.push(revision_in_headline(run, i));
    }
    let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
    let expected: BTreeSet<u64> = (2..=WRITERS as u64 + 1).collect();
    assert_eq!(
        distinct,
        expected,
        "the writers' revisions should be staging@2..=staging@{} once each, got {numbers:?}",
        WRITERS + 1
    );

    // History, as users see it: seed + 8 revisions, newest first, contiguous.
    let history = fixture.ok("alice", "history staging --limit 50");
    let total = WRITERS + 1;
    assert_eq!(
        history.lines().next(),
        Some(format!("staging: {total} revisions, newest first").as_str()),
        "{history}"
    );
    let labels: Vec<String> = table_rows(&history)
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    let expected_labels: Vec<String> = (1..=total).rev().map(|n| format!("staging@{n}")).collect();
    assert_eq!(labels, expected_labels, "{history}");

    // The head holds all 8 keys beside the seeded ones.
    let shown = fixture.ok("alice", "env staging.ms-users");
    assert_eq!(
        shown.lines().next(),
        Some(format!("staging@{total} ms-users").as_str()),
        "{shown}"
    );
    let rows: BTreeSet<(String, String)> = table_rows(&shown)
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let mut expected_rows: BTreeSet<(String, String)> = (1..=WRITERS)
        .map(|i| (format!("config.{}", key(i)), value(i)))
        .collect();
    expected_rows.insert(("version".into(), "3.5.6".into()));
    expected_rows.insert(("image".into(), "registry.example.com/ms-users".into()));
    assert_eq!(rows, expected_rows, "{shown}");

    // The store itself: a parent chain without gaps, one change per writer, all audited.
    runtime().block_on(async {
        let store = ferry::store::open(&fixture.store_url, fixture.path())
            .await
            .expect("open the store");
        let staging = Name::parse("staging").unwrap();
        let metas = store.history(&staging, None, 100).await.expect("history");
        let chain: Vec<(u64, Option<u64>)> = metas.iter().map(|m| (m.number, m.parent)).collect();
        let expected_chain: Vec<(u64, Option<u64>)> = (1..=total as u64)
            .rev()
            .map(|n| (n, (n > 1).then(|| n - 1)))
            .collect();
        assert_eq!(chain, expected_chain);

        let mut written = BTreeSet::new();
        for meta in metas.iter().filter(|m| m.number > 1) {
            assert_eq!(meta.author.identity(), "shell:alice", "{meta:?}");
            assert_eq!(meta.changes.len(), 1, "one change per revision: {meta:?}");
            let change = &meta.changes[0];
            assert_eq!(change.service.as_str(), "ms-users");
            assert_eq!(change.old, None, "{meta:?}");
            let k = change.key.as_str().to_string();
            assert_eq!(
                change.new.as_deref(),
                Some(k.replace("config.K", "v").as_str()),
                "{meta:?}"
            );
            assert_eq!(
                meta.command,
                format!("env staging.ms-users.{k} {}", k.replace("config.K", "v"))
            );
            written.insert(k);
        }
        let all_keys: BTreeSet<String> = (1..=WRITERS)
            .map(|i| format!("config.{}", key(i)))
            .collect();
        assert_eq!(
            written, all_keys,
            "every writer's change is in exactly one revision"
        );

        let head = store.head(&staging).await.expect("head").expect("a head");
        assert_eq!(head.meta.number, total as u64);
        let spec = head.document.services[&Name::parse("ms-users").unwrap()].clone();
        for i in 1..=WRITERS {
            let found = spec
                .iter()
                .find(|(k, _)| k.as_str() == format!("config.{}", key(i)))
                .map(|(_, v)| v.as_str());
            assert_eq!(found, Some(value(i).as_str()), "head document: {spec:?}");
        }

        let audit = store
            .audit(&AuditFilter {
                env: Some(staging.clone()),
                user: Some("shell:alice".into()),
                limit: 100,
            })
            .await
            .expect("audit");
        let audited: BTreeSet<String> = audit
            .iter()
            .filter(|e| e.entry.outcome == Outcome::Ok && e.entry.text.contains("config.K"))
            .map(|e| e.entry.text.clone())
            .collect();
        let commands: BTreeSet<String> = (1..=WRITERS).map(command).collect();
        assert_eq!(audited, commands, "every write is audited as ok once");
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.entry.text.contains("config.K"))
                .count(),
            WRITERS,
            "{audit:#?}"
        );
    });
}

#[test]
fn sqlite_writers_racing_on_an_existing_store_lose_nothing() {
    let fixture = Fixture::sqlite();
    // One command first, alone: the file exists, is migrated and seeded before the race.
    let envs = fixture.ok("alice", "envs");
    assert!(envs.contains("staging@1"), "{envs}");
    assert!(fixture.db_file().is_file());
    check_race(&fixture);
}

#[test]
fn sqlite_writers_racing_on_a_store_that_does_not_exist_yet_lose_nothing() {
    let fixture = Fixture::sqlite();
    assert!(!fixture.db_file().exists());
    check_race(&fixture);
}

#[test]
fn postgres_writers_racing_on_a_fresh_database_lose_nothing() {
    let db = TestDatabase::create_blocking();
    let fixture = Fixture::with_store(db.url());
    check_race(&fixture);
    drop(fixture);
    drop(db);
}
