//! Load benchmark of the Slack transport, end to end through the protocol-faithful fake Slack
//! (`tests/support/fake_slack.rs`, on 127.0.0.1): ferry's slack-morphism client in Socket Mode
//! receives `app_mention` envelopes, claims each event in the SQLite store, runs the command,
//! audits it and posts the reply in the event's thread with `chat.postMessage`.
//!
//! Measured, per scenario, on a fresh store and a fresh transport, after one warm-up mention
//! that fills the transport's `users.info` / `conversations.info` caches (except in the "cold"
//! scenario, which shows what a burst does to empty caches):
//!
//! - **events/s**: N mentions pushed as fast as the fake can push them ("burst"), from the
//!   first envelope pushed to the last of the N replies recorded by the fake;
//! - **reply latency** (median, p99, max): from the moment the fake pushed an envelope to the
//!   moment it recorded the `chat.postMessage` in that event's thread (`thread_ts` = the
//!   event's `ts`);
//! - **ack latency** (median, p99): from the push to the fake receiving the envelope's ack;
//! - the same one event at a time ("serial": push, wait for the reply, push the next), for the
//!   latency without queueing.
//!
//! Commands: reads (`env staging.svc-01.version`), durable writes on SQLite
//! (`env staging.svc-01.config.K<i> v<i>`, one new revision each) and both alternating. All
//! timestamps are the fake's own (`at_ms`: whole milliseconds since the fake started), so the
//! resolution of every figure is 1 ms and the bench's polling does not enter into it.
//!
//! The fake, ferry and this driver share one tokio runtime (one worker per core), so on a small
//! machine the figures include the fake's own work. Also counted: lost write races (ferry's
//! compare-and-set retries, from its `debug` log), ferry and sqlx warnings, and the
//! `users.info` / `conversations.info` calls the transport made.
//!
//! `cargo bench --bench slack` runs it (N = 500 burst, 100 serial; `FERRY_BENCH_SLACK_N` and
//! `FERRY_BENCH_SLACK_SERIAL` change them, `FERRY_BENCH_SLACK_DIR` puts the store in another
//! folder, e.g. `/dev/shm` to see what fsync costs); without `--bench` (`cargo test --benches`)
//! it runs a small smoke version.

#[path = "../tests/support/fake_slack.rs"]
mod fake_slack;
#[path = "../tests/chat/fixture.rs"]
mod fixture;

use fake_slack::FakeSlack;
use ferry::chat::Transport;
use ferry::chat::slack::SlackTransport;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, filter::Targets};

const CHANNEL: &str = "C0DEPLOYS";
const ALICE: &str = "U0ALICE";
const APP_VAR: &str = "FERRY_BENCH_SLACK_APP_TOKEN";
const BOT_VAR: &str = "FERRY_BENCH_SLACK_BOT_TOKEN";
/// The longest one scenario may take before the bench gives up on it.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the driver looks for replies in a burst (the figures come from the fake's
/// timestamps, so this only decides when the driver notices the end).
const POLL: Duration = Duration::from_millis(20);
/// How often it looks in a serial run, where noticing a reply late delays the next push.
const SERIAL_POLL: Duration = Duration::from_millis(1);
/// The log message of a lost compare-and-set race in `ferry::command::context`.
const LOST_RACE: &str = "lost a write race";

#[derive(Clone, Copy, PartialEq)]
enum Mix {
    Read,
    Write,
    Alternate,
}

#[derive(Clone, Copy, PartialEq)]
enum Pace {
    Burst,
    Serial,
}

struct Scenario {
    mix: Mix,
    pace: Pace,
    /// No warm-up mention: the burst meets the transport's empty name caches.
    cold: bool,
    n: usize,
}

impl Scenario {
    fn label(&self) -> String {
        let mix = match self.mix {
            Mix::Read => "read",
            Mix::Write => "write",
            Mix::Alternate => "read+write",
        };
        let pace = match self.pace {
            Pace::Burst => "burst",
            Pace::Serial => "serial",
        };
        let cold = if self.cold { " cold" } else { "" };
        format!("{mix} {pace}{cold}")
    }

    fn is_write(&self, i: usize) -> bool {
        match self.mix {
            Mix::Read => false,
            Mix::Write => true,
            Mix::Alternate => i % 2 == 1,
        }
    }

    /// The mention text of event `i`.
    fn text(&self, i: usize) -> String {
        if self.is_write(i) {
            format!("<@UBOT> env staging.svc-01.config.K{i} v{i}")
        } else {
            "<@UBOT> env staging.svc-01.version".to_string()
        }
    }

    /// Whether `reply` is the success reply of event `i`.
    fn reply_ok(&self, i: usize, reply: &str) -> bool {
        if self.is_write(i) {
            reply.starts_with("*staging@") && reply.contains(&format!("config.K{i}"))
        } else {
            reply.contains("svc-01.version = 1.0.1")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Log counting
// ---------------------------------------------------------------------------------------------

/// Counts log events by "LEVEL target: message" (ferry's debug and up, sqlx's warnings and up).
#[derive(Clone, Default)]
struct LogCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl LogCounter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for LogCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut visitor = MessageVisitor(String::new());
        event.record(&mut visitor);
        let meta = event.metadata();
        let key = format!("{} {}: {}", meta.level(), meta.target(), visitor.0);
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// One running ferry against one fake
// ---------------------------------------------------------------------------------------------

struct Bed {
    fake: FakeSlack,
    app: Arc<ferry::app::App>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Bed {
    async fn start() -> Bed {
        let fake = FakeSlack::start().await;
        fake.add_user(ALICE, "alice").await;
        fake.add_channel(CHANNEL, "deploys").await;
        // FERRY_BENCH_SLACK_DIR puts the store elsewhere (e.g. on tmpfs, to see what fsync costs).
        let dir = match std::env::var_os("FERRY_BENCH_SLACK_DIR") {
            Some(parent) => tempfile::tempdir_in(parent),
            None => tempfile::tempdir(),
        }
        .expect("a temp folder");
        let table = format!(
            "[slack]\napp_token_env = \"{APP_VAR}\"\nbot_token_env = \"{BOT_VAR}\"\napi_url = \"{}\"",
            fake.api_url()
        );
        fixture::write(
            dir.path(),
            &table,
            "slack:#alerts",
            &format!("\"slack:{ALICE}\" = [\"deployer\"]"),
            false,
        );
        let app = fixture::app(dir.path()).await;
        let transport = SlackTransport::connect(app.config.slack.as_ref().expect("[slack]"))
            .await
            .expect("ferry connects to the fake");
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let running = app.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = transport.run(running, shutdown).await {
                eprintln!("the Slack transport stopped: {e}");
            }
        });
        fake.wait_for_connections(1, Duration::from_secs(15)).await;
        Bed {
            fake,
            app,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }

    /// Pushes one mention; returns its `ts` and envelope id.
    async fn push(&self, text: &str) -> (String, String) {
        let ts = self.fake.fresh_ts().await;
        let event = self.fake.mention(ALICE, CHANNEL, text, &ts).await;
        (ts, event.envelope_id)
    }

    /// Waits until every `ts` in `waiting` has a reply in its thread, looking every `poll`.
    async fn wait_replies(
        &self,
        waiting: &HashSet<String>,
        poll: Duration,
        deadline: Instant,
    ) -> Result<(), String> {
        loop {
            let replied: HashSet<String> = self
                .fake
                .posts()
                .await
                .into_iter()
                .filter_map(|p| p.thread_ts)
                .filter(|t| waiting.contains(t))
                .collect();
            if replied.len() == waiting.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} of {} replies after {SCENARIO_TIMEOUT:?}",
                    replied.len(),
                    waiting.len()
                ));
            }
            tokio::time::sleep(poll).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a scenario
// ---------------------------------------------------------------------------------------------

struct Measured {
    label: String,
    n: usize,
    serial: bool,
    /// First to last envelope pushed, ms.
    push_ms: u64,
    /// First envelope pushed to last reply recorded, ms.
    wall_ms: u64,
    /// First envelope pushed to first reply recorded, ms.
    first_reply_ms: u64,
    /// CPU time of the whole process (fake, ferry and driver) over the measured part, in % of
    /// one core.
    cpu_percent: f64,
    reply: Vec<u64>,
    ack: Vec<u64>,
    errors: usize,
    first_error: Option<String>,
    /// Threads that got more than one post.
    extra_posts: usize,
    revisions: u64,
    writes: usize,
    lost_races: u64,
    users_info: usize,
    conversations_info: usize,
    other_logs: Vec<(String, u64)>,
}

async fn run(scenario: &Scenario, logs: &LogCounter) -> Result<Measured, String> {
    let bed = Bed::start().await;
    let deadline = Instant::now() + SCENARIO_TIMEOUT;

    if !scenario.cold {
        // Warm-up: fills the name caches and opens the HTTP connection to the Web API.
        let (warm, _) = bed.push("<@UBOT> env staging.svc-01.version").await;
        bed.wait_replies(&HashSet::from([warm]), POLL, deadline)
            .await?;
    }
    let head_before = fixture::head(&bed.app, "staging").await;
    let calls_before = bed.fake.calls().await.len();
    logs.take();

    let (cpu_before, started) = (cpu_time(), Instant::now());
    let mut sent = Vec::with_capacity(scenario.n);
    match scenario.pace {
        Pace::Burst => {
            for i in 0..scenario.n {
                sent.push(bed.push(&scenario.text(i)).await);
            }
            let waiting = sent.iter().map(|(ts, _)| ts.clone()).collect();
            bed.wait_replies(&waiting, POLL, deadline).await?;
        }
        Pace::Serial => {
            for i in 0..scenario.n {
                let (ts, envelope) = bed.push(&scenario.text(i)).await;
                bed.wait_replies(&HashSet::from([ts.clone()]), SERIAL_POLL, deadline)
                    .await?;
                sent.push((ts, envelope));
            }
        }
    }
    let cpu_percent = (cpu_time().saturating_sub(cpu_before)).as_secs_f64() * 100.0
        / started.elapsed().as_secs_f64().max(1e-9);
    // Late extra posts (a split reply, a duplicate) would land within moments.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rec = bed.fake.snapshot().await;
    let head_after = fixture::head(&bed.app, "staging").await;
    let log_counts = logs.take();
    bed.stop().await;

    let pushed: HashMap<&str, u64> = rec
        .envelopes
        .iter()
        .map(|e| (e.envelope_id.as_str(), e.at_ms))
        .collect();
    let acked: HashMap<&str, u64> = rec
        .acks
        .iter()
        .map(|a| (a.envelope_id.as_str(), a.at_ms))
        .collect();
    let mut replies: HashMap<&str, Vec<&fake_slack::Posted>> = HashMap::new();
    for post in &rec.posts {
        if let Some(t) = &post.thread_ts {
            replies.entry(t.as_str()).or_default().push(post);
        }
    }
    let calls = |method: &str| {
        rec.calls[calls_before..]
            .iter()
            .filter(|c| c.method == method)
            .count()
    };

    let mut result = Measured {
        label: scenario.label(),
        n: scenario.n,
        serial: scenario.pace == Pace::Serial,
        push_ms: 0,
        wall_ms: 0,
        first_reply_ms: 0,
        cpu_percent,
        reply: Vec::new(),
        ack: Vec::new(),
        errors: 0,
        first_error: None,
        extra_posts: 0,
        revisions: head_after - head_before,
        writes: (0..scenario.n).filter(|&i| scenario.is_write(i)).count(),
        lost_races: 0,
        users_info: calls("users.info"),
        conversations_info: calls("conversations.info"),
        other_logs: Vec::new(),
    };
    let (mut first_push, mut last_push) = (u64::MAX, 0);
    let (mut first_reply, mut last_reply) = (u64::MAX, 0);
    for (i, (ts, envelope)) in sent.iter().enumerate() {
        let at = pushed[envelope.as_str()];
        let posts = &replies[ts.as_str()];
        // Posts are recorded in arrival order, so the first is the earliest.
        let reply = posts[0];
        first_push = first_push.min(at);
        last_push = last_push.max(at);
        first_reply = first_reply.min(reply.at_ms);
        last_reply = last_reply.max(reply.at_ms);
        result.reply.push(reply.at_ms - at);
        if let Some(ack) = acked.get(envelope.as_str()) {
            result.ack.push(ack - at);
        }
        result.extra_posts += posts.len() - 1;
        let text = reply.text.as_deref().unwrap_or_default();
        if !scenario.reply_ok(i, text) {
            result.errors += 1;
            result
                .first_error
                .get_or_insert_with(|| text.lines().next().unwrap_or_default().to_string());
        }
    }
    result.push_ms = last_push - first_push;
    result.wall_ms = last_reply - first_push;
    result.first_reply_ms = first_reply - first_push;
    for (key, count) in log_counts {
        if key.contains(LOST_RACE) {
            result.lost_races += count;
        } else if !key.starts_with("DEBUG") && !key.starts_with("TRACE") {
            result.other_logs.push((key, count));
        }
    }
    Ok(result)
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the whole `rusage` it is pointed at, or fails and fills nothing.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return Duration::ZERO;
        }
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

/// The nearest-rank percentile `p` (0–100) of sorted `values`.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of the table; `cells` after the first are right-aligned.
fn print_line(cells: &[String]) {
    let mut line = format!("{:<22}", cells[0]);
    for (cell, width) in cells[1..].iter().zip(WIDTHS) {
        line.push_str(&format!(" {cell:>width$}"));
    }
    println!("{line}");
}

const WIDTHS: [usize; 15] = [4, 5, 5, 5, 8, 5, 6, 6, 6, 5, 5, 4, 6, 6, 6];

fn print_header() {
    let header = [
        "scenario", "N", "push", "wall", "1st", "events/s", "cpu%", "rep50", "rep99", "repmax",
        "ack50", "ack99", "err", "races", "u.info", "c.info",
    ];
    print_line(&header.map(str::to_string));
}

fn print_row(r: &mut Measured) {
    r.reply.sort_unstable();
    r.ack.sort_unstable();
    // A serial run's rate is one over (latency + the driver's polling): not a throughput.
    let rate = if r.serial || r.wall_ms == 0 {
        "-".to_string()
    } else {
        format!("{:.0}", r.n as f64 * 1000.0 / r.wall_ms as f64)
    };
    print_line(&[
        r.label.clone(),
        r.n.to_string(),
        r.push_ms.to_string(),
        r.wall_ms.to_string(),
        r.first_reply_ms.to_string(),
        rate,
        format!("{:.0}", r.cpu_percent),
        percentile(&r.reply, 50.0).to_string(),
        percentile(&r.reply, 99.0).to_string(),
        percentile(&r.reply, 100.0).to_string(),
        percentile(&r.ack, 50.0).to_string(),
        percentile(&r.ack, 99.0).to_string(),
        r.errors.to_string(),
        r.lost_races.to_string(),
        r.users_info.to_string(),
        r.conversations_info.to_string(),
    ]);
}

fn print_notes(r: &Measured) {
    let mut notes = Vec::new();
    if r.revisions != r.writes as u64 {
        notes.push(format!("{} revisions for {} writes", r.revisions, r.writes));
    }
    if r.ack.len() != r.n {
        notes.push(format!("{} of {} envelopes acked", r.ack.len(), r.n));
    }
    if r.extra_posts > 0 {
        notes.push(format!("{} extra posts in threads", r.extra_posts));
    }
    if let Some(e) = &r.first_error {
        notes.push(format!("first wrong reply: {e:?}"));
    }
    for (key, count) in &r.other_logs {
        notes.push(format!("log ×{count}: {key}"));
    }
    for note in notes {
        println!("    {}: {note}", r.label);
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: run a smoke version.
    let full = std::env::args().any(|a| a == "--bench");
    let (burst, serial) = if full {
        (
            env_count("FERRY_BENCH_SLACK_N", 500),
            env_count("FERRY_BENCH_SLACK_SERIAL", 100),
        )
    } else {
        (20, 5)
    };
    // SAFETY: no other thread exists yet; the transport reads these when it connects.
    unsafe {
        std::env::set_var(APP_VAR, fake_slack::APP_TOKEN);
        std::env::set_var(BOT_VAR, fake_slack::BOT_TOKEN);
    }
    let logs = LogCounter::default();
    let _ = tracing_subscriber::registry()
        .with(
            logs.clone().with_filter(
                Targets::new()
                    .with_target("ferry", tracing::Level::DEBUG)
                    .with_target("sqlx", tracing::Level::WARN)
                    .with_target("slack_morphism", tracing::Level::WARN),
            ),
        )
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let scenario = |mix, pace, cold, n| Scenario { mix, pace, cold, n };
    let scenarios = [
        scenario(Mix::Read, Pace::Burst, true, burst),
        scenario(Mix::Read, Pace::Burst, false, burst),
        scenario(Mix::Write, Pace::Burst, false, burst),
        scenario(Mix::Alternate, Pace::Burst, false, burst),
        scenario(Mix::Read, Pace::Serial, false, serial),
        scenario(Mix::Write, Pace::Serial, false, serial),
    ];
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "ferry's Slack transport against the fake Slack on 127.0.0.1, SQLite store in {}, \
         {cores} cores, load average {}",
        std::env::var("FERRY_BENCH_SLACK_DIR").unwrap_or_else(|_| "the temp folder".into()),
        load_average()
    );
    println!(
        "times in ms, from the fake's timestamps (1 ms resolution): push = first to last \
         envelope pushed, wall = first push to last reply, 1st = first push to first reply, \
         rep = push to reply in the thread, ack = push to ack. events/s = N / wall. cpu% = \
         process CPU over the run (100 = one core). races = lost compare-and-set write races. \
         u.info, c.info = users.info, conversations.info calls in the run."
    );
    print_header();
    let started = Instant::now();
    let mut failed = false;
    for scenario in &scenarios {
        match runtime.block_on(run(scenario, &logs)) {
            Ok(mut result) => {
                print_row(&mut result);
                print_notes(&result);
            }
            Err(e) => {
                println!("{:<22} failed: {e}", scenario.label());
                failed = true;
            }
        }
    }
    println!(
        "total {:.1} s, load average {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    if failed {
        std::process::exit(1);
    }
}
