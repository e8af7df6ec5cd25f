//! Benchmarks of ferry's core paths: parsing one command line, one durable `env` write through
//! `App::handle` on a SQLite file (parse, policy, compare-and-set append, audit insert), and
//! `history staging --limit 20` against stores holding 1,000 and 100,000 revisions.
//!
//! `cargo bench --bench core` runs them; `cargo bench --bench core -- --test` (or
//! `cargo test --benches`) runs each once as a smoke test, with small stores.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ferry::app::App;
use ferry::command::parse;
use ferry::config::Config;
use ferry::domain::{Actor, Change, KeyPath, Name, NewRevision, Origin, Outcome, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const CONFIG: &str = r#"
[store]
url = "sqlite://ferry.db"
seed = "environments"

[deployers.none]
kind = "noop"

[environments.staging]
deployer = "none"
promote_to = ["production"]

[environments.production]
deployer = "none"
protected = true

[roles]
releaser = ["read", "write:*", "converge:*", "promote:*", "approve:*", "rollback:*"]

[users]
"shell:bench" = ["releaser"]
default = []
"#;

const SEED: &str = r#"[services.ms-users]
version = "3.5.6"
image = "registry.example.com/ms-users"

[services.ms-billing]
version = "1.2.0"
image = "registry.example.com/ms-billing"
"#;

/// Whether criterion runs in test mode (each benchmark once): as it decides, `--test`, or no
/// `--bench` (`cargo test --benches`).
fn smoke_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An app over a fresh SQLite file in its own temp dir (kept alive beside it).
struct Bench {
    app: App,
    actor: Actor,
    origin: Origin,
    _dir: tempfile::TempDir,
}

async fn start() -> Bench {
    let dir = tempfile::Builder::new()
        .prefix("ferry-bench-")
        .tempdir()
        .expect("temp dir");
    let root = dir.path();
    std::fs::create_dir(root.join("environments")).expect("environments/");
    for env in ["staging", "production"] {
        std::fs::write(root.join(format!("environments/{env}.toml")), SEED).expect("seed");
    }
    let file = root.join("ferry.toml");
    std::fs::write(&file, CONFIG).expect("ferry.toml");
    let config = Config::parse(CONFIG, "bench", Some(file), root).expect("valid config");
    let app = App::start(config).await.expect("start ferry");
    Bench {
        app,
        actor: Actor::new("shell", "bench", "bench"),
        origin: Origin::shell(),
        _dir: dir,
    }
}

/// Appends revisions to staging until it has `total`, each changing one key, straight through
/// the store (no command parsing, no audit).
async fn populate(bench: &Bench, total: u64) {
    let store = bench.app.store.as_ref();
    let env = Name::parse("staging").unwrap();
    let service = Name::parse("ms-users").unwrap();
    let author = Actor::new("shell", "bench", "bench");
    let head = store.head(&env).await.expect("head").expect("seeded");
    let mut number = head.meta.number;
    let mut document = head.document;
    let started = Instant::now();
    while number < total {
        // Cycle through a few keys so that documents stay small, as in real use.
        let key = KeyPath::parse(&format!("config.K{}", number % 8)).unwrap();
        let value = format!("v{number}");
        let old = document.get(&service, &key).map(str::to_string);
        document.set(&service, &key, Value::parse(&key, &value).unwrap());
        let revision = NewRevision {
            env: env.clone(),
            parent: Some(number),
            author: author.clone(),
            at: number as i64,
            reason: (number % 4 == 0).then(|| format!("change {number}")),
            command: format!("env staging.ms-users.{key} {value}"),
            changes: vec![Change {
                service: service.clone(),
                key,
                old,
                new: Some(value),
            }],
            document: document.clone(),
        };
        number = store.append(revision).await.expect("append").meta.number;
    }
    eprintln!(
        "populated staging with {total} revisions in {:.1?}",
        started.elapsed()
    );
}

fn bench_parse(c: &mut Criterion) {
    let line = "env staging.ms-users.version 3.5.7 -- hotfix";
    assert!(parse(line).is_ok());
    c.bench_function("parse", |b| b.iter(|| parse(black_box(line))));
}

fn bench_env_write(c: &mut Criterion) {
    let rt = runtime();
    let bench = rt.block_on(start());
    let mut n = 0u64;
    // Checked once outside the loop: the command writes a revision.
    let reply = rt.block_on(bench.app.handle(
        &bench.actor,
        &bench.origin,
        "env staging.ms-users.config.BENCH warmup",
    ));
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:?}");
    assert!(reply.headline.starts_with("staging@2:"), "{reply:?}");
    c.bench_function("env_write_sqlite", |b| {
        b.to_async(&rt).iter(|| {
            n += 1;
            // A new value every time, so that every iteration writes a revision.
            let command = format!("env staging.ms-users.config.BENCH v{n}");
            let bench = &bench;
            async move {
                let reply = bench
                    .app
                    .handle(&bench.actor, &bench.origin, &command)
                    .await;
                black_box(reply)
            }
        })
    });
}

/// A store with `size` revisions of staging, built on first use so that filtered-out
/// benchmarks cost nothing.
fn populated<'a>(rt: &Runtime, slot: &'a mut Option<Bench>, size: u64) -> &'a Bench {
    slot.get_or_insert_with(|| {
        rt.block_on(async {
            let bench = start().await;
            populate(&bench, size).await;
            let reply = bench
                .app
                .handle(&bench.actor, &bench.origin, "history staging --limit 20")
                .await;
            assert_eq!(reply.outcome, Outcome::Ok, "{reply:?}");
            assert_eq!(reply.headline, "staging: 20 revisions, newest first");
            bench
        })
    })
}

fn bench_history(c: &mut Criterion) {
    let rt = runtime();
    let sizes: [u64; 2] = if smoke_mode() {
        [100, 1_000]
    } else {
        [1_000, 100_000]
    };
    let mut stores: Vec<Option<Bench>> = sizes.iter().map(|_| None).collect();

    // The whole command: parse, policy, the query, rendering, and the audit insert.
    let mut group = c.benchmark_group("history_limit_20");
    group.sample_size(30);
    for (size, slot) in sizes.iter().zip(stores.iter_mut()) {
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            let bench = populated(&rt, slot, *size);
            b.to_async(&rt).iter(|| async move {
                black_box(
                    bench
                        .app
                        .handle(&bench.actor, &bench.origin, "history staging --limit 20")
                        .await,
                )
            })
        });
    }
    group.finish();

    // The store query alone (what `history --limit 20` asks for), to separate it from the
    // audit write above.
    let env = Name::parse("staging").unwrap();
    let mut group = c.benchmark_group("store_history_21");
    group.sample_size(30);
    for (size, slot) in sizes.iter().zip(stores.iter_mut()) {
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            let bench = populated(&rt, slot, *size);
            let env = &env;
            b.to_async(&rt).iter(|| async move {
                black_box(
                    bench
                        .app
                        .store
                        .history(env, None, 21)
                        .await
                        .expect("history"),
                )
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_parse, bench_env_write, bench_history
}
criterion_main!(benches);
