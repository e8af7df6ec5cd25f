//! The store contract: one suite of behaviours every `Store` backend must show, run against
//! SQLite (a file in a temporary folder) and PostgreSQL (a fresh database per test).
//!
//! Each behaviour is a plain async function over a `Harness`; the `contract!` macro turns each
//! into one test per backend. The suite goes through `ferry::store::open` only, so it must not
//! know how either backend is built.

#[path = "support/pg.rs"]
mod pg;

use ferry::domain::{
    Actor, AuditFilter, Document, KeyPath, Lock, Millis, Name, NewAuditEntry, NewRevision, Outcome,
    Revision, Value, diff,
};
use ferry::store::{AppendError, DeployStart, LockAttempt, Store, StoreError};
use pg::TestDatabase;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a test's store lives; reopening it reaches the same data.
struct Harness {
    url: String,
    base: PathBuf,
    /// Keeps the SQLite folder alive until the test ends, then deletes it.
    _folder: Option<tempfile::TempDir>,
    /// Keeps the PostgreSQL database alive until the test ends, then drops it.
    _database: Option<TestDatabase>,
}

impl Harness {
    /// A relative `sqlite:` URL in a folder that does not exist yet, so that every test also
    /// checks that the path resolves against the base folder and the folder is created.
    async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("temporary folder");
        Harness {
            url: "sqlite:state/ferry.db".to_string(),
            base: dir.path().to_path_buf(),
            _folder: Some(dir),
            _database: None,
        }
    }

    async fn postgres() -> Harness {
        let db = TestDatabase::create().await;
        Harness {
            url: db.url().to_string(),
            base: PathBuf::from("/nonexistent"),
            _folder: None,
            _database: Some(db),
        }
    }

    /// Opens (and migrates) the store; each call is a separate pool, as another process would be.
    async fn open(&self) -> Arc<dyn Store> {
        match ferry::store::open(&self.url, &self.base).await {
            Ok(store) => store,
            Err(e) => panic!("cannot open {}: {e}", self.url),
        }
    }
}

/// One test per behaviour and backend: `sqlite::<name>` and `postgres::<name>`.
macro_rules! contract {
    ($($behaviour:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let harness = super::Harness::sqlite().await;
                    super::$behaviour(&harness).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let harness = super::Harness::postgres().await;
                    super::$behaviour(&harness).await;
                }
            )*
        }
    };
}

contract!(
    an_empty_store_has_nothing,
    appended_revisions_read_back_whole,
    history_is_newest_first_and_filters_by_service,
    a_stale_parent_conflicts_and_writes_nothing,
    a_parent_ahead_of_the_head_leaves_no_gap,
    racing_appenders_all_land_without_gaps,
    locks_are_taken_refused_renewed_and_released,
    a_lapsed_lock_is_replaced,
    racing_lock_takers_have_exactly_one_winner,
    take_lapsed_locks_returns_only_the_holders_lapsed_ones,
    audit_lists_newest_first_and_filters,
    a_reopened_store_keeps_everything,
    many_stores_open_and_write_at_once,
    refused_deploy_starts_consume_no_deploy_number,
    a_deploy_that_lost_its_lease_can_write_nothing_more,
    a_burst_of_claims_and_audit_rows_is_committed_once_each,
);

// ---- fixtures -------------------------------------------------------------------------------

fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

fn alice() -> Actor {
    Actor::new("shell", "alice", "Alice Liddell")
}

fn bob() -> Actor {
    Actor::new("slack", "U024BE7LH", "bob")
}

/// A document from `(service, key, value)` triples.
fn doc(entries: &[(&str, &str, &str)]) -> Document {
    let mut d = Document::default();
    for (service, key, value) in entries {
        let key = KeyPath::parse(key).unwrap();
        d.set(&name(service), &key, Value::parse(&key, value).unwrap());
    }
    d
}

/// The revision that turns `before` into `after` on top of `parent`.
fn revision(
    env: &str,
    parent: Option<u64>,
    before: &Document,
    after: &Document,
    author: Actor,
    reason: Option<&str>,
) -> NewRevision {
    NewRevision {
        env: name(env),
        parent,
        author,
        at: 1_700_000_000_000 + parent.map_or(0, |p| p as i64 * 1000),
        reason: reason.map(str::to_string),
        command: format!("set {env} (on {parent:?})"),
        changes: diff(before, after),
        document: after.clone(),
    }
}

/// Appends, panicking with the error if it fails.
async fn append(store: &Arc<dyn Store>, new: NewRevision) -> Revision {
    let expected = new.clone().into_revision();
    let stored = match store.append(new).await {
        Ok(stored) => stored,
        Err(e) => panic!("append {}: {e}", expected.meta.label()),
    };
    assert_eq!(stored, expected, "append returns the revision as stored");
    stored
}

/// Sets `service.version` to `version` on the current head, retrying on the new head when another
/// writer wins. Returns the number written and how many conflicts it went through.
async fn set_version_retrying(
    store: &Arc<dyn Store>,
    env: &str,
    service: &str,
    version: &str,
) -> (u64, u32) {
    let mut conflicts = 0;
    loop {
        let head = store.head(&name(env)).await.unwrap();
        let before = head
            .as_ref()
            .map(|h| h.document.clone())
            .unwrap_or_default();
        let mut after = before.clone();
        let key = KeyPath::version();
        after.set(&name(service), &key, Value::parse(&key, version).unwrap());
        let parent = head.map(|h| h.meta.number);
        match store
            .append(revision(env, parent, &before, &after, alice(), None))
            .await
        {
            Ok(stored) => return (stored.meta.number, conflicts),
            Err(AppendError::Conflict { attempted, head }) => {
                assert_eq!(attempted, parent.map_or(1, |p| p + 1));
                assert!(
                    head >= parent,
                    "the head never moves back: {head:?} < {parent:?}"
                );
                conflicts += 1;
                assert!(conflicts < 1000, "{service} never got through");
            }
            Err(e) => panic!("append failed: {e}"),
        }
    }
}

fn lock(env: &str, holder: Actor, since: Millis, expires: Option<Millis>) -> Lock {
    Lock {
        env: name(env),
        holder,
        reason: Some(format!("testing {env}")),
        since,
        expires,
    }
}

fn audit_entry(
    at: Millis,
    actor: Actor,
    env: Option<&str>,
    text: &str,
    outcome: Outcome,
) -> NewAuditEntry {
    NewAuditEntry {
        at,
        platform: actor.platform.clone(),
        channel: (actor.platform != "shell").then(|| "C0DEPLOY".to_string()),
        actor,
        env: env.map(name),
        text: text.to_string(),
        outcome,
        detail: format!("{outcome}: {text}"),
    }
}

fn numbers(history: &[ferry::domain::RevisionMeta]) -> Vec<u64> {
    history.iter().map(|m| m.number).collect()
}

// ---- behaviours -----------------------------------------------------------------------------

async fn an_empty_store_has_nothing(h: &Harness) {
    let store = h.open().await;
    let staging = name("staging");
    assert_eq!(store.head(&staging).await.unwrap(), None);
    assert_eq!(store.revision(&staging, 1).await.unwrap(), None);
    assert_eq!(store.revision(&staging, u64::MAX).await.unwrap(), None);
    assert!(store.history(&staging, None, 10).await.unwrap().is_empty());
    assert!(
        store
            .history(&staging, Some(&name("ms-users")), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.lock(&staging).await.unwrap(), None);
    assert_eq!(store.release_lock(&staging).await.unwrap(), None);
    assert!(
        store
            .take_lapsed_locks("shell:alice", i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    let all = AuditFilter {
        env: None,
        user: None,
        limit: 10,
    };
    assert!(store.audit(&all).await.unwrap().is_empty());
}

async fn appended_revisions_read_back_whole(h: &Harness) {
    let store = h.open().await;
    let staging = name("staging");
    let d0 = Document::default();
    let d1 = doc(&[
        ("ms-users", "version", "3.5.6"),
        ("ms-users", "config.LOG_LEVEL", "debug"),
    ]);
    let d2 = doc(&[
        ("ms-users", "version", "3.5.7"),
        ("ms-users", "config.LOG_LEVEL", "debug"),
        ("billing", "version", "1.0.0"),
    ]);
    let d3 = doc(&[
        ("billing", "version", "1.0.1"),
        ("billing", "image", "reg/billing; $(x) ✓"),
    ]);

    let r1 = append(&store, revision("staging", None, &d0, &d1, alice(), None)).await;
    let r2 = append(
        &store,
        revision("staging", Some(1), &d1, &d2, bob(), Some("hotfix")),
    )
    .await;
    let r3 = append(
        &store,
        revision("staging", Some(2), &d2, &d3, alice(), Some("drop users")),
    )
    .await;
    assert_eq!((r1.meta.number, r2.meta.number, r3.meta.number), (1, 2, 3));

    let head = store.head(&staging).await.unwrap().expect("a head");
    assert_eq!(head, r3);
    assert_eq!(head.meta.parent, Some(2));
    assert_eq!(head.meta.author, alice());
    assert_eq!(head.meta.reason.as_deref(), Some("drop users"));
    assert_eq!(
        head.document
            .get(&name("billing"), &KeyPath::parse("image").unwrap()),
        Some("reg/billing; $(x) ✓")
    );
    assert!(head.document.service(&name("ms-users")).is_none());
    let summaries: Vec<String> = head.meta.changes.iter().map(|c| c.summary()).collect();
    assert_eq!(
        summaries,
        [
            "billing.image (none) → reg/billing; $(x) ✓",
            "billing.version 1.0.0 → 1.0.1",
            "ms-users.config.LOG_LEVEL debug → (none)",
            "ms-users.version 3.5.7 → (none)",
        ]
    );

    let second = store
        .revision(&staging, 2)
        .await
        .unwrap()
        .expect("revision 2");
    assert_eq!(second, r2);
    assert_eq!(second.meta.author, bob());
    assert_eq!(second.meta.reason.as_deref(), Some("hotfix"));
    assert_eq!(second.meta.at, 1_700_000_001_000);
    assert_eq!(second.meta.command, "set staging (on Some(1))");
    assert_eq!(store.revision(&staging, 1).await.unwrap(), Some(r1.clone()));
    assert_eq!(
        store
            .revision(&staging, 1)
            .await
            .unwrap()
            .unwrap()
            .meta
            .parent,
        None
    );
    assert_eq!(store.revision(&staging, 4).await.unwrap(), None);

    // Environments are numbered independently.
    assert_eq!(store.head(&name("prod")).await.unwrap(), None);
    let p1 = append(&store, revision("prod", None, &d0, &d2, bob(), None)).await;
    assert_eq!(p1.meta.number, 1);
    assert_eq!(store.head(&staging).await.unwrap(), Some(r3));
}

async fn history_is_newest_first_and_filters_by_service(h: &Harness) {
    let store = h.open().await;
    let staging = name("staging");
    // Revision n touches: 1 users+billing, 2 users, 3 billing, 4 users, 5 search.
    let docs = [
        Document::default(),
        doc(&[("users", "version", "1"), ("billing", "version", "1")]),
        doc(&[("users", "version", "2"), ("billing", "version", "1")]),
        doc(&[("users", "version", "2"), ("billing", "version", "2")]),
        doc(&[("users", "version", "3"), ("billing", "version", "2")]),
        doc(&[
            ("users", "version", "3"),
            ("billing", "version", "2"),
            ("search", "version", "1"),
        ]),
    ];
    let mut written = Vec::new();
    for n in 1..docs.len() {
        let parent = (n > 1).then(|| n as u64 - 1);
        let reason = format!("step {n}");
        written.push(
            append(
                &store,
                revision(
                    "staging",
                    parent,
                    &docs[n - 1],
                    &docs[n],
                    alice(),
                    Some(&reason),
                ),
            )
            .await,
        );
    }
    // Another environment's revisions never show up.
    append(
        &store,
        revision("prod", None, &docs[0], &docs[1], bob(), None),
    )
    .await;

    let all = store.history(&staging, None, 100).await.unwrap();
    assert_eq!(numbers(&all), [5, 4, 3, 2, 1]);
    let expected: Vec<_> = written.iter().rev().map(|r| r.meta.clone()).collect();
    assert_eq!(
        all, expected,
        "history carries every field but the document"
    );
    assert_eq!(
        numbers(&store.history(&staging, None, 2).await.unwrap()),
        [5, 4]
    );
    assert!(store.history(&staging, None, 0).await.unwrap().is_empty());

    let users = store
        .history(&staging, Some(&name("users")), 100)
        .await
        .unwrap();
    assert_eq!(numbers(&users), [4, 2, 1]);
    assert_eq!(users[0].reason.as_deref(), Some("step 4"));
    assert_eq!(users[0].changes, written[3].meta.changes);
    assert_eq!(
        numbers(
            &store
                .history(&staging, Some(&name("billing")), 100)
                .await
                .unwrap()
        ),
        [3, 1]
    );
    assert_eq!(
        numbers(
            &store
                .history(&staging, Some(&name("users")), 2)
                .await
                .unwrap()
        ),
        [4, 2]
    );
    assert_eq!(
        numbers(
            &store
                .history(&staging, Some(&name("search")), 100)
                .await
                .unwrap()
        ),
        [5]
    );
    assert!(
        store
            .history(&staging, Some(&name("nope")), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        numbers(
            &store
                .history(&name("prod"), Some(&name("users")), 100)
                .await
                .unwrap()
        ),
        [1]
    );
}

async fn a_stale_parent_conflicts_and_writes_nothing(h: &Harness) {
    let store = h.open().await;
    let staging = name("staging");
    let d0 = Document::default();
    let d1 = doc(&[("users", "version", "1")]);
    let d2 = doc(&[("users", "version", "2")]);
    append(&store, revision("staging", None, &d0, &d1, alice(), None)).await;
    let r2 = append(
        &store,
        revision("staging", Some(1), &d1, &d2, alice(), None),
    )
    .await;

    // bob still sees revision 1 and touches a service nobody else has.
    let loser = doc(&[("users", "version", "1"), ("other", "version", "9")]);
    match store
        .append(revision(
            "staging",
            Some(1),
            &d1,
            &loser,
            bob(),
            Some("late"),
        ))
        .await
    {
        Err(AppendError::Conflict { attempted, head }) => {
            assert_eq!((attempted, head), (2, Some(2)));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A first revision when there already is one is stale too.
    match store
        .append(revision("staging", None, &d0, &loser, bob(), None))
        .await
    {
        Err(AppendError::Conflict { attempted, head }) => {
            assert_eq!((attempted, head), (1, Some(2)));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    assert_eq!(store.head(&staging).await.unwrap(), Some(r2.clone()));
    assert_eq!(store.revision(&staging, 2).await.unwrap(), Some(r2));
    assert_eq!(
        numbers(&store.history(&staging, None, 10).await.unwrap()),
        [2, 1]
    );
    assert!(
        store
            .history(&staging, Some(&name("other")), 10)
            .await
            .unwrap()
            .is_empty(),
        "the loser's service index rows were not written either"
    );
}

async fn a_parent_ahead_of_the_head_leaves_no_gap(h: &Harness) {
    let store = h.open().await;
    let staging = name("staging");
    let d0 = Document::default();
    let d1 = doc(&[("users", "version", "1")]);
    let d2 = doc(&[("users", "version", "2")]);

    // On an empty environment only `None` is the head.
    match store
        .append(revision("staging", Some(0), &d0, &d1, alice(), None))
        .await
    {
        Err(AppendError::Conflict { attempted, head }) => assert_eq!((attempted, head), (1, None)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.head(&staging).await.unwrap(), None);

    append(&store, revision("staging", None, &d0, &d1, alice(), None)).await;
    append(
        &store,
        revision("staging", Some(1), &d1, &d2, alice(), None),
    )
    .await;
    for ahead in [3, 6, u64::MAX - 1, u64::MAX] {
        match store
            .append(revision("staging", Some(ahead), &d2, &d1, bob(), None))
            .await
        {
            Err(AppendError::Conflict { attempted, head }) => {
                assert_eq!((attempted, head), (ahead.saturating_add(1), Some(2)));
            }
            other => panic!("expected a conflict for parent {ahead}, got {other:?}"),
        }
    }
    assert_eq!(store.revision(&staging, 4).await.unwrap(), None);
    assert_eq!(store.revision(&staging, 7).await.unwrap(), None);
    assert_eq!(
        numbers(&store.history(&staging, None, 10).await.unwrap()),
        [2, 1]
    );

    // The right parent still goes through, as number 3.
    let r3 = append(&store, revision("staging", Some(2), &d2, &d1, bob(), None)).await;
    assert_eq!(r3.meta.number, 3);
    assert_eq!(store.head(&staging).await.unwrap(), Some(r3));
}

async fn racing_appenders_all_land_without_gaps(h: &Harness) {
    // Two pools, as two ferry processes would have, and two writers on each.
    let stores = [h.open().await, h.open().await];
    const WRITERS: usize = 4;
    const EACH: usize = 8;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = stores[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for i in 0..EACH {
                let (_, c) =
                    set_version_retrying(&store, "staging", &format!("svc-{w}"), &format!("{i}"))
                        .await;
                conflicts += c;
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.expect("writer task");
    }
    eprintln!("racing appenders: {conflicts} conflicts retried");

    let store = &stores[0];
    let staging = name("staging");
    let total = (WRITERS * EACH) as u64;
    let head = store.head(&staging).await.unwrap().expect("a head");
    assert_eq!(head.meta.number, total);
    for w in 0..WRITERS {
        assert_eq!(
            head.document
                .get(&name(&format!("svc-{w}")), &KeyPath::version()),
            Some(&*format!("{}", EACH - 1)),
            "every writer's last change is in the head"
        );
    }
    let history = store.history(&staging, None, 1000).await.unwrap();
    assert_eq!(numbers(&history), (1..=total).rev().collect::<Vec<_>>());
    for meta in &history {
        assert_eq!(meta.parent, (meta.number > 1).then(|| meta.number - 1));
        assert_eq!(
            meta.changes.len(),
            1,
            "each revision is exactly one writer's change"
        );
    }
    for w in 0..WRITERS {
        let service = store
            .history(&staging, Some(&name(&format!("svc-{w}"))), 1000)
            .await
            .unwrap();
        assert_eq!(service.len(), EACH, "svc-{w} changed {EACH} times");
    }
}

async fn locks_are_taken_refused_renewed_and_released(h: &Harness) {
    let store = h.open().await;
    let staging = name("staging");
    let mine = lock("staging", alice(), 1_000, Some(10_000));
    assert_eq!(
        store.acquire_lock(mine.clone(), 1_000).await.unwrap(),
        LockAttempt::Acquired(mine.clone())
    );
    assert_eq!(store.lock(&staging).await.unwrap(), Some(mine.clone()));

    // Someone else is told who holds it, and nothing changes.
    let theirs = lock("staging", bob(), 2_000, None);
    assert_eq!(
        store.acquire_lock(theirs.clone(), 2_000).await.unwrap(),
        LockAttempt::HeldBy(mine.clone())
    );
    assert_eq!(store.lock(&staging).await.unwrap(), Some(mine.clone()));

    // The holder renews, even under a new display name: identity is platform and id.
    let renewed = Lock {
        holder: Actor::new("shell", "alice", "alice (renamed)"),
        reason: None,
        since: 5_000,
        expires: Some(50_000),
        ..mine.clone()
    };
    assert_eq!(
        store.acquire_lock(renewed.clone(), 5_000).await.unwrap(),
        LockAttempt::Acquired(renewed.clone())
    );
    assert_eq!(store.lock(&staging).await.unwrap(), Some(renewed.clone()));
    assert_eq!(
        store.acquire_lock(theirs.clone(), 49_999).await.unwrap(),
        LockAttempt::HeldBy(renewed.clone())
    );

    // Another environment is independent.
    let prod = lock("prod", bob(), 3_000, None);
    assert_eq!(
        store.acquire_lock(prod.clone(), 3_000).await.unwrap(),
        LockAttempt::Acquired(prod.clone())
    );

    assert_eq!(store.release_lock(&staging).await.unwrap(), Some(renewed));
    assert_eq!(store.lock(&staging).await.unwrap(), None);
    assert_eq!(store.release_lock(&staging).await.unwrap(), None);
    assert_eq!(
        store.acquire_lock(theirs.clone(), 6_000).await.unwrap(),
        LockAttempt::Acquired(theirs.clone())
    );
    // A lock without an expiry holds at any time.
    assert_eq!(
        store.acquire_lock(mine.clone(), i64::MAX).await.unwrap(),
        LockAttempt::HeldBy(theirs)
    );
    assert_eq!(store.lock(&name("prod")).await.unwrap(), Some(prod));
}

async fn a_lapsed_lock_is_replaced(h: &Harness) {
    let store = h.open().await;
    let staging = name("staging");
    let mine = lock("staging", alice(), 0, Some(1_000));
    store.acquire_lock(mine.clone(), 0).await.unwrap();

    let theirs = lock("staging", bob(), 999, Some(90_000));
    assert_eq!(
        store.acquire_lock(theirs.clone(), 999).await.unwrap(),
        LockAttempt::HeldBy(mine.clone()),
        "still active one millisecond before it lapses"
    );
    let theirs = Lock {
        since: 1_000,
        ..theirs
    };
    assert_eq!(
        store.acquire_lock(theirs.clone(), 1_000).await.unwrap(),
        LockAttempt::Acquired(theirs.clone()),
        "lapsed at its expiry"
    );
    assert_eq!(store.lock(&staging).await.unwrap(), Some(theirs.clone()));
    // The lapsed holder is now the one refused.
    assert_eq!(
        store.acquire_lock(mine, 2_000).await.unwrap(),
        LockAttempt::HeldBy(theirs)
    );
}

async fn racing_lock_takers_have_exactly_one_winner(h: &Harness) {
    let stores = [h.open().await, h.open().await];
    for round in 0..5i64 {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = stores[i % 2].clone();
            let candidate = lock(
                "staging",
                Actor::new("shell", &format!("u{i}"), "u"),
                round,
                None,
            );
            tasks.push(tokio::spawn(async move {
                store.acquire_lock(candidate, round).await.expect("acquire")
            }));
        }
        let mut winners = Vec::new();
        let mut refusals = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                LockAttempt::Acquired(l) => winners.push(l),
                LockAttempt::HeldBy(l) => refusals.push(l),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let winner = winners.pop().unwrap();
        assert!(
            refusals.iter().all(|l| *l == winner),
            "every loser names the winner"
        );
        assert_eq!(
            stores[0].lock(&name("staging")).await.unwrap(),
            Some(winner.clone())
        );
        assert_eq!(
            stores[1].release_lock(&name("staging")).await.unwrap(),
            Some(winner)
        );
    }
}

async fn take_lapsed_locks_returns_only_the_holders_lapsed_ones(h: &Harness) {
    let store = h.open().await;
    let staging = lock("staging", alice(), 0, Some(1_000));
    let dev = lock("dev", alice(), 0, Some(2_000));
    let prod = lock("prod", alice(), 0, Some(5_000));
    let forever = lock("perf", alice(), 0, None);
    let qa = lock("qa", bob(), 0, Some(500));
    // Same id on another platform is another person.
    let impostor = lock(
        "demo",
        Actor::new("slack", "alice", "Alice Liddell"),
        0,
        Some(10),
    );
    for l in [&staging, &dev, &prod, &forever, &qa, &impostor] {
        assert_eq!(
            store.acquire_lock(l.clone(), 0).await.unwrap(),
            LockAttempt::Acquired(l.clone())
        );
    }

    assert_eq!(
        store.take_lapsed_locks("shell:alice", 2_000).await.unwrap(),
        [dev.clone(), staging.clone()],
        "lapsed at or before now, this holder's only, ordered by environment"
    );
    assert_eq!(store.lock(&name("staging")).await.unwrap(), None);
    assert_eq!(store.lock(&name("dev")).await.unwrap(), None);
    assert_eq!(store.lock(&name("prod")).await.unwrap(), Some(prod.clone()));
    assert_eq!(
        store.lock(&name("perf")).await.unwrap(),
        Some(forever.clone())
    );
    assert_eq!(store.lock(&name("qa")).await.unwrap(), Some(qa.clone()));
    assert_eq!(
        store.lock(&name("demo")).await.unwrap(),
        Some(impostor.clone())
    );
    assert!(
        store
            .take_lapsed_locks("shell:alice", 2_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .take_lapsed_locks("alice", 9_999)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store
            .take_lapsed_locks("slack:U024BE7LH", 2_000)
            .await
            .unwrap(),
        [qa]
    );
    assert_eq!(
        store.take_lapsed_locks("slack:alice", 2_000).await.unwrap(),
        [impostor]
    );
    assert_eq!(
        store.take_lapsed_locks("shell:alice", 5_000).await.unwrap(),
        [prod]
    );
    assert_eq!(store.lock(&name("perf")).await.unwrap(), Some(forever));
}

async fn audit_lists_newest_first_and_filters(h: &Harness) {
    let store = h.open().await;
    let entries = [
        audit_entry(
            100,
            alice(),
            Some("staging"),
            "set staging.users.version 2",
            Outcome::Ok,
        ),
        audit_entry(100, bob(), Some("prod"), "converge prod", Outcome::Refused),
        audit_entry(90, alice(), None, "help", Outcome::Ok),
        audit_entry(200, bob(), Some("staging"), "lock staging", Outcome::Failed),
        audit_entry(300, alice(), Some("prod"), "history prod", Outcome::Ok),
    ];
    let mut ids = Vec::new();
    for e in &entries {
        ids.push(store.record_audit(e.clone()).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    let list = |env: Option<&str>, user: Option<&str>, limit: u32| {
        let store = store.clone();
        let filter = AuditFilter {
            env: env.map(name),
            user: user.map(str::to_string),
            limit,
        };
        async move { store.audit(&filter).await.unwrap() }
    };
    // (index into `entries`) newest first.
    let expect = |indexes: &[usize]| -> Vec<ferry::domain::AuditEntry> {
        indexes
            .iter()
            .map(|&i| ferry::domain::AuditEntry {
                id: ids[i],
                entry: entries[i].clone(),
            })
            .collect()
    };

    assert_eq!(
        list(None, None, 100).await,
        expect(&[4, 3, 2, 1, 0]),
        "newest recorded first"
    );
    assert_eq!(list(None, None, 2).await, expect(&[4, 3]));
    assert_eq!(list(Some("staging"), None, 100).await, expect(&[3, 0]));
    assert_eq!(list(Some("prod"), None, 1).await, expect(&[4]));
    assert!(list(Some("dev"), None, 100).await.is_empty());
    for alice_by in ["shell:alice", "alice", "Alice Liddell"] {
        assert_eq!(
            list(None, Some(alice_by), 100).await,
            expect(&[4, 2, 0]),
            "{alice_by}"
        );
    }
    for bob_by in ["slack:U024BE7LH", "U024BE7LH", "bob"] {
        assert_eq!(
            list(None, Some(bob_by), 100).await,
            expect(&[3, 1]),
            "{bob_by}"
        );
    }
    assert!(
        list(None, Some("slack:alice"), 100).await.is_empty(),
        "platform must match"
    );
    assert!(
        list(None, Some("Alice"), 100).await.is_empty(),
        "names match exactly"
    );
    assert_eq!(list(Some("prod"), Some("alice"), 100).await, expect(&[4]));
    assert_eq!(list(Some("staging"), Some("bob"), 100).await, expect(&[3]));
    assert!(list(None, None, 0).await.is_empty());
    // Round trip of the optional fields.
    let help = &list(None, Some("alice"), 100).await[1];
    assert_eq!(
        (help.entry.env.clone(), help.entry.channel.clone()),
        (None, None)
    );
    let refused = &list(None, Some("bob"), 100).await[1];
    assert_eq!(refused.entry.channel.as_deref(), Some("C0DEPLOY"));
    assert_eq!(refused.entry.outcome, Outcome::Refused);
}

async fn a_reopened_store_keeps_everything(h: &Harness) {
    let d0 = Document::default();
    let d1 = doc(&[("users", "version", "1")]);
    let d2 = doc(&[("users", "version", "2"), ("billing", "replicas", "3")]);
    let held = lock("staging", bob(), 10, Some(99_000));
    let (r2, audit_id) = {
        let store = h.open().await;
        append(&store, revision("staging", None, &d0, &d1, alice(), None)).await;
        let r2 = append(
            &store,
            revision("staging", Some(1), &d1, &d2, bob(), Some("why")),
        )
        .await;
        store.acquire_lock(held.clone(), 10).await.unwrap();
        let id = store
            .record_audit(audit_entry(5, alice(), Some("staging"), "set", Outcome::Ok))
            .await
            .unwrap();
        (r2, id)
    };
    if h.url.starts_with("sqlite") {
        assert!(
            h.base.join("state/ferry.db").is_file(),
            "the file is where the URL said"
        );
    }

    // Migrations run again on an up-to-date schema without complaint.
    let store = h.open().await;
    let staging = name("staging");
    assert_eq!(store.head(&staging).await.unwrap(), Some(r2.clone()));
    assert_eq!(
        numbers(
            &store
                .history(&staging, Some(&name("billing")), 10)
                .await
                .unwrap()
        ),
        [2]
    );
    assert_eq!(store.lock(&staging).await.unwrap(), Some(held.clone()));
    let audit = store
        .audit(&AuditFilter {
            env: None,
            user: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].id, audit_id);
    assert_eq!(audit[0].entry.text, "set");
    // And it keeps working: numbering and ids carry on.
    let r3 = append(
        &store,
        revision("staging", Some(2), &d2, &d1, alice(), None),
    )
    .await;
    assert_eq!(r3.meta.number, 3);
    let next = store
        .record_audit(audit_entry(6, bob(), None, "unlock", Outcome::Ok))
        .await
        .unwrap();
    assert!(next > audit_id);
    assert_eq!(
        store
            .acquire_lock(lock("staging", alice(), 20, None), 20)
            .await
            .unwrap(),
        LockAttempt::HeldBy(held)
    );
}

async fn many_stores_open_and_write_at_once(h: &Harness) {
    // Eight pools opening a fresh store together race on creating and migrating it, then all
    // write to one environment: nobody may fail, and nothing may be lost.
    const STORES: usize = 8;
    const EACH: usize = 4;
    let mut tasks = Vec::new();
    for s in 0..STORES {
        let url = h.url.clone();
        let base = h.base.clone();
        tasks.push(tokio::spawn(async move {
            let store = match ferry::store::open(&url, &base).await {
                Ok(store) => store,
                Err(e) => panic!("store {s} cannot open: {e}"),
            };
            for i in 0..EACH {
                set_version_retrying(&store, "staging", &format!("svc-{s}"), &format!("{i}")).await;
                store
                    .record_audit(audit_entry(
                        i as i64,
                        alice(),
                        Some("staging"),
                        "set",
                        Outcome::Ok,
                    ))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let store = h.open().await;
    let staging = name("staging");
    let total = (STORES * EACH) as u64;
    assert_eq!(
        store.head(&staging).await.unwrap().map(|r| r.meta.number),
        Some(total)
    );
    assert_eq!(
        numbers(&store.history(&staging, None, 1000).await.unwrap()),
        (1..=total).rev().collect::<Vec<_>>()
    );
    let audit = store
        .audit(&AuditFilter {
            env: Some(staging),
            user: None,
            limit: 1000,
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), STORES * EACH);
}

fn new_deploy(env: &str) -> ferry::domain::NewDeploy {
    ferry::domain::NewDeploy {
        env: name(env),
        revision: 1,
        kind: ferry::domain::DeployKind::Converge,
        actor: alice(),
        started: 1_000,
        owner: "elsewhere/1".into(),
        planned: vec![name("api")],
    }
}

async fn started(store: &Arc<dyn Store>, env: &str) -> i64 {
    match store.start_deploy(&new_deploy(env)).await.unwrap() {
        DeployStart::Started(id) => id,
        other => panic!("{other:?}"),
    }
}

/// While one deploy runs, the starts refused meanwhile leave the numbering alone: the next
/// deploy is the one after it.
async fn refused_deploy_starts_consume_no_deploy_number(h: &Harness) {
    let store = h.open().await;
    let first = started(&store, "staging").await;
    for _ in 0..5 {
        let refused = store.start_deploy(&new_deploy("staging")).await.unwrap();
        assert!(
            matches!(&refused, DeployStart::Busy(d) if d.id == first),
            "{refused:?}"
        );
    }
    assert!(
        store
            .finish_deploy(
                first,
                ferry::domain::DeployStatus::Succeeded,
                &[],
                "ok",
                2_000
            )
            .await
            .unwrap()
    );
    assert_eq!(started(&store, "staging").await, first + 1);
}

/// Once another process marked a deploy interrupted, its steps, process groups, applied state
/// and end are refused, and the interrupted record stands.
async fn a_deploy_that_lost_its_lease_can_write_nothing_more(h: &Harness) {
    let store = h.open().await;
    let id = started(&store, "staging").await;
    let running = store
        .running_deploy(&name("staging"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .interrupt_deploy(id, running.heartbeat, "interrupted: reaped", 3_000)
            .await
            .unwrap()
    );
    assert!(!store.record_steps(id, &[]).await.unwrap());
    let group = ferry::domain::ProcessGroup {
        pgid: 42,
        started: 7,
    };
    assert!(!store.record_deploy_process(id, group).await.unwrap());
    let applied = ferry::domain::AppliedService {
        service: name("api"),
        spec: Default::default(),
        revision: 1,
        deploy_id: id,
        at: 3_000,
    };
    let late = store.record_applied(&name("staging"), &applied).await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost(lost)) if lost == id),
        "{late:?}"
    );
    assert!(store.applied(&name("staging")).await.unwrap().is_empty());
    assert!(
        !store
            .finish_deploy(
                id,
                ferry::domain::DeployStatus::Succeeded,
                &[],
                "late",
                4_000
            )
            .await
            .unwrap()
    );
    let deploy = store.deploys(&name("staging"), 1).await.unwrap().remove(0);
    assert_eq!(deploy.status, ferry::domain::DeployStatus::Interrupted);
    assert_eq!(deploy.summary, "interrupted: reaped");
    assert!(deploy.processes.is_empty());
}

/// Claims and audit rows of concurrent commands share commits: in a burst, every event is
/// claimed exactly once (a redelivery racing the first delivery loses), every audit row gets its
/// own id, and all of it is durable, read back by a store opened afresh.
async fn a_burst_of_claims_and_audit_rows_is_committed_once_each(h: &Harness) {
    let store = h.open().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every event is delivered twice at once.
            let event = format!("ev-{}", i / 2);
            let won = store.claim_event("slack", &event, 1_000).await.unwrap();
            let id = store
                .record_audit(audit_entry(
                    1_000 + i,
                    alice(),
                    Some("staging"),
                    &format!("cmd {i}"),
                    Outcome::Ok,
                ))
                .await
                .unwrap();
            (event, won, id)
        }));
    }
    let mut winners = std::collections::BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let (event, won, id) = task.await.unwrap();
        if won {
            *winners.entry(event).or_insert(0) += 1;
        }
        assert!(ids.insert(id), "audit id {id} given twice");
    }
    assert_eq!(winners.len(), 100);
    assert!(winners.values().all(|&n| n == 1), "{winners:?}");
    let reopened = h.open().await;
    for i in 0..100 {
        assert!(
            !reopened
                .claim_event("slack", &format!("ev-{i}"), 2_000)
                .await
                .unwrap()
        );
    }
    let rows = reopened
        .audit(&AuditFilter {
            env: None,
            user: None,
            limit: 1_000,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 200);
}
