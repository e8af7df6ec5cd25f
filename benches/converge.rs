//! Converge throughput: `converge staging --force` through `App::handle` on a
//! SQLite file, 200 services, 50 at a time, each `apply` a 100 ms tokio sleep, so that every
//! iteration deploys all 200. The ideal is 4 rounds of 100 ms = 400 ms; what is above that is
//! ferry's per-step cost. After criterion's run it prints the median, the ratio to 400 ms
//! (target ≤ 1.10) and the peak RSS of one converge, then where the time goes: the slot cycle
//! seen by the deployer, the engine's per-step store writes (`record_applied`,
//! `record_steps`) timed alone under the same 50-way concurrency, and the same converge with
//! the store on tmpfs and with an instant deployer.
//!
//! `cargo bench --bench converge` runs it (needs `[[bench]] name = "converge"
//! harness = false`); `cargo test --benches` runs each benchmark once, without the report.

use criterion::{Criterion, SamplingMode};
use ferry::app::App;
use ferry::clock::SystemClock;
use ferry::config::Config;
use ferry::deploy::{DeployError, DeployRequest, Deployer, Deployers, Live};
use ferry::domain::{
    Actor, AppliedService, KeyPath, Name, Origin, Outcome, ServiceSpec, Step, StepStatus,
};
use futures_util::StreamExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const SERVICES: usize = 200;
const CONCURRENCY: usize = 50;
const APPLY: Duration = Duration::from_millis(100);
/// SERVICES / CONCURRENCY rounds of APPLY.
const IDEAL: Duration = Duration::from_millis(400);
/// Converges timed for the report.
const REPORT_RUNS: usize = 10;

const COMMAND: &str = "converge staging --force";

fn config_text() -> String {
    format!(
        r#"
[store]
url = "sqlite://ferry.db"
seed = "environments"

[deployers.sleep]
kind = "noop"

[environments.staging]
deployer = "sleep"
concurrency = {CONCURRENCY}

[roles]
releaser = ["*"]

[users]
"shell:bench" = ["releaser"]
default = []
"#
    )
}

fn seed_text() -> String {
    (0..SERVICES)
        .map(|i| {
            format!(
                "[services.svc-{i:03}]\nversion = \"1.0.{i}\"\nimage = \"registry.example.com/svc-{i:03}\"\nreplicas = \"3\"\n\n"
            )
        })
        .collect()
}

/// Sleeps `delay` per apply and notes when each apply started and ended.
struct Sleeper {
    delay: Duration,
    applies: Mutex<Vec<(Instant, Instant)>>,
}

#[async_trait::async_trait]
impl Deployer for Sleeper {
    async fn apply(&self, request: &DeployRequest) -> Result<String, DeployError> {
        let started = Instant::now();
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.applies.lock().unwrap().push((started, Instant::now()));
        Ok(format!("deployed {}", request.service))
    }

    async fn verify(&self, _: &DeployRequest, _: Duration) -> Result<(), DeployError> {
        Ok(())
    }

    async fn observe(&self, _: &Name, _: &Name) -> Result<Live, DeployError> {
        Ok(Live::Unknown)
    }
}

/// An app on a fresh SQLite file under `parent`, with the sleeper as its deployer, converged
/// once so that the store holds applied state like a real one.
struct Bench {
    app: App,
    deployer: Arc<Sleeper>,
    actor: Actor,
    origin: Origin,
    _dir: tempfile::TempDir,
}

async fn start(parent: &Path, delay: Duration) -> Bench {
    let dir = tempfile::Builder::new()
        .prefix("ferry-bench-converge-")
        .tempdir_in(parent)
        .expect("temp dir");
    let root = dir.path();
    std::fs::create_dir(root.join("environments")).expect("environments/");
    std::fs::write(root.join("environments/staging.toml"), seed_text()).expect("seed");
    let text = config_text();
    let file = root.join("ferry.toml");
    std::fs::write(&file, &text).expect("ferry.toml");
    let config = Config::parse(&text, "bench", Some(file), root).expect("valid config");
    let store = ferry::store::open(&config.store.url, &config.base_dir)
        .await
        .expect("open store");
    let deployer = Arc::new(Sleeper {
        delay,
        applies: Mutex::new(Vec::new()),
    });
    let mut deployers = Deployers::build(&config.deployers, &config.base_dir).expect("deployers");
    deployers.insert(Name::parse("sleep").unwrap(), deployer.clone());
    let app = App::with_parts(config, store, Arc::new(SystemClock), deployers)
        .await
        .expect("start ferry");
    let bench = Bench {
        app,
        deployer,
        actor: Actor::new("shell", "bench", "bench"),
        origin: Origin::shell(),
        _dir: dir,
    };
    let reply = bench
        .app
        .handle(&bench.actor, &bench.origin, "converge staging")
        .await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:?}");
    bench
}

/// One `converge staging --force`, checked to have deployed all 200.
async fn converge(bench: &Bench) -> Duration {
    let started = Instant::now();
    let reply = bench.app.handle(&bench.actor, &bench.origin, COMMAND).await;
    let took = started.elapsed();
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:?}");
    assert!(
        reply.headline.contains("200 services deployed"),
        "{}",
        reply.headline
    );
    took
}

fn runtime() -> Runtime {
    // The runtime `ferry run` and `ferry shell` use.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Whether criterion runs in test mode (each benchmark once): `--test`, or no `--bench`
/// (`cargo test --benches`).
fn smoke_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

fn bench_converge(c: &mut Criterion, rt: &Runtime, bench: &Bench) {
    let mut group = c.benchmark_group("converge");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("200_services_50_at_a_time_100ms_force", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += converge(bench).await;
            }
            total
        })
    });
    group.finish();
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `VmHWM`/`VmRSS` lines of /proc/self/status, in KiB.
fn proc_status_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0); false when not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Distribution of `samples` as `n=…, mean …, p50 …, p90 …, p99 …, max …` in ms.
fn describe(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let n = samples.len();
    let at = |q: f64| samples[((n as f64 - 1.0) * q).round() as usize];
    let total: Duration = samples.iter().sum();
    format!(
        "n={n}, total {:.1} ms, mean {:.2} ms, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(total),
        ms(total / n as u32),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(samples[n - 1])
    )
}

/// The deployer's view of the last converge: the time from one apply's start to the start of
/// the apply that took over its slot (ideal: 100 ms), and the time from the first apply's
/// start to the last one's end (ideal: 400 ms).
fn slot_cycle(bench: &Bench) -> (Duration, Duration) {
    let applies = bench.deployer.applies.lock().unwrap();
    let last: Vec<(Instant, Instant)> = applies[applies.len() - SERVICES..].to_vec();
    drop(applies);
    let mut starts: Vec<Instant> = last.iter().map(|a| a.0).collect();
    starts.sort();
    let cycles: Vec<Duration> = (CONCURRENCY..SERVICES)
        .map(|i| starts[i] - starts[i - CONCURRENCY])
        .collect();
    let mean = cycles.iter().sum::<Duration>() / cycles.len() as u32;
    let end = last.iter().map(|a| a.1).max().unwrap();
    (mean, end - starts[0])
}

/// Times the two store writes the engine makes per step, alone, with 50 at a time as in the
/// converge: `record_applied` of each service, and `record_steps` of the growing step list
/// (the engine rewrites all steps so far after every step).
async fn store_writes(bench: &Bench) -> (Vec<Duration>, Vec<Duration>) {
    let store = bench.app.store.clone();
    let env = Name::parse("staging").unwrap();
    let deploy = store.deploys(&env, 1).await.expect("deploys")[0].id;
    let applied = store.applied(&env).await.expect("applied");
    assert_eq!(applied.len(), SERVICES);
    let record_applied: Vec<Duration> = futures_util::stream::iter(applied)
        .map(|a| {
            let store = store.clone();
            let env = env.clone();
            async move {
                let applied = AppliedService { at: a.at + 1, ..a };
                let started = Instant::now();
                store
                    .record_applied(&env, &applied)
                    .await
                    .expect("record_applied");
                started.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let steps: Vec<Step> = (0..SERVICES)
        .map(|i| Step {
            service: Name::parse(&format!("svc-{i:03}")).unwrap(),
            version: Some(format!("1.0.{i}")),
            status: StepStatus::Succeeded,
            detail: format!("deployed svc-{i:03}"),
            millis: 100,
        })
        .collect();
    let steps = &steps;
    let record_steps: Vec<Duration> = futures_util::stream::iter(1..=SERVICES)
        .map(|k| {
            let store = store.clone();
            async move {
                let started = Instant::now();
                store
                    .record_steps(deploy, &steps[..k])
                    .await
                    .expect("record_steps");
                started.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    (record_applied, record_steps)
}

/// The numbers the brief asks for, and where the time goes.
fn report(rt: &Runtime, bench: &Bench) {
    eprintln!();
    eprintln!(
        "== converge: {SERVICES} services, concurrency {CONCURRENCY}, apply {APPLY:?} each, `{COMMAND}` =="
    );
    let runs: Vec<Duration> = (0..REPORT_RUNS)
        .map(|_| rt.block_on(converge(bench)))
        .collect();
    let med = median(runs.clone());
    let ratio = med.as_secs_f64() / IDEAL.as_secs_f64();
    eprintln!(
        "wall time over {REPORT_RUNS} runs: median {:.1} ms, min {:.1} ms, max {:.1} ms; ideal {:.0} ms; ratio {ratio:.3} (target <= 1.10: {})",
        ms(med),
        ms(*runs.iter().min().unwrap()),
        ms(*runs.iter().max().unwrap()),
        ms(IDEAL),
        if ratio <= 1.10 { "met" } else { "MISSED" }
    );

    // Peak memory of one converge: reset the high-water mark, converge, read it.
    let reset = reset_peak_rss();
    let before = proc_status_kib("VmRSS:").unwrap_or(0);
    rt.block_on(converge(bench));
    let peak = proc_status_kib("VmHWM:").unwrap_or(0);
    if reset {
        eprintln!(
            "peak RSS during one converge: {:.1} MiB (RSS before it {:.1} MiB, so +{:.1} MiB)",
            peak as f64 / 1024.0,
            before as f64 / 1024.0,
            peak.saturating_sub(before) as f64 / 1024.0
        );
    } else {
        eprintln!(
            "peak RSS of the whole bench process so far: {:.1} MiB (could not reset VmHWM)",
            peak as f64 / 1024.0
        );
    }

    // Where the time goes.
    let (cycle, window) = slot_cycle(bench);
    eprintln!(
        "deployer's view of the last run: slot cycle (apply start to the next apply start in that slot) {:.1} ms, of which {:.1} ms is ferry's per-step work; first apply start to last apply end {:.1} ms",
        ms(cycle),
        ms(cycle.saturating_sub(APPLY)),
        ms(window)
    );
    let (applied, steps) = rt.block_on(store_writes(bench));
    eprintln!(
        "store.record_applied alone, {CONCURRENCY} at a time: {}",
        describe(applied)
    );
    eprintln!(
        "store.record_steps (1..={SERVICES} steps) alone, {CONCURRENCY} at a time: {}",
        describe(steps)
    );

    if Path::new("/dev/shm").is_dir() {
        let shm = rt.block_on(start(Path::new("/dev/shm"), APPLY));
        let runs: Vec<Duration> = (0..5).map(|_| rt.block_on(converge(&shm))).collect();
        let med = median(runs);
        eprintln!(
            "same converge, SQLite file on tmpfs (/dev/shm, no disk flush): median {:.1} ms, ratio {:.3}",
            ms(med),
            med.as_secs_f64() / IDEAL.as_secs_f64()
        );
    }
    let instant = rt.block_on(start(&std::env::temp_dir(), Duration::ZERO));
    let runs: Vec<Duration> = (0..5).map(|_| rt.block_on(converge(&instant))).collect();
    let med = median(runs);
    eprintln!(
        "same converge, deployer returns at once (ferry's own cost for {SERVICES} steps, i.e. {} store writes that SQLite runs one at a time): median {:.1} ms = {:.2} ms per step",
        2 * SERVICES,
        ms(med),
        ms(med) / SERVICES as f64
    );
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let on_multi = multi.block_on(start(&std::env::temp_dir(), APPLY));
    let runs: Vec<Duration> = (0..5)
        .map(|_| multi.block_on(converge(&on_multi)))
        .collect();
    eprintln!(
        "same converge on a multi-thread runtime: median {:.1} ms",
        ms(median(runs))
    );
    eprintln!(
        "peak RSS over all of the above (since the reset before the single converge): {:.1} MiB",
        proc_status_kib("VmHWM:").unwrap_or(0) as f64 / 1024.0
    );
}

fn main() {
    let rt = runtime();
    let bench = rt.block_on(start(&std::env::temp_dir(), APPLY));
    // The spec each service is deployed at, checked once: every key reaches the deployer.
    let spec: ServiceSpec = rt
        .block_on(bench.app.store.head(&Name::parse("staging").unwrap()))
        .expect("head")
        .expect("seeded")
        .document
        .services[&Name::parse("svc-007").unwrap()]
        .clone();
    assert_eq!(spec[&KeyPath::version()], "1.0.7");

    let mut c = Criterion::default().configure_from_args();
    bench_converge(&mut c, &rt, &bench);
    c.final_summary();
    if !smoke_mode() {
        report(&rt, &bench);
    }
}
