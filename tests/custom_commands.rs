//! User-defined commands (`commands/*.toml`) through the real command path: files
//! loaded from a temporary folder, matched against command lines, and run against a real `App`
//! (SQLite store, a noop deployer, a seeded `staging`) with a `Context` built as
//! `App::handle_with_events` builds it.
//!
//! It proves that patterns match literal words and one-word parameters and show themselves as
//! usage when the words don't fit; that hostile values never get as far as running; that a
//! command expanding into built-ins checks its own permission first, runs the steps in order as
//! the same user and stops at the first failure, keeping what earlier steps did and saying so;
//! that a program gets its values as exact argv words and `FERRY_PARAM_*` variables, never
//! through a shell, and that a failure or a timeout is reported with its output tail; that a
//! malformed file is an error naming the file and the line at fault; and that the shipped
//! `commands/` folder loads and works.

use ferry::app::App;
use ferry::command::custom::{CustomCommands, Invocation};
use ferry::command::{Block, Context, Reply};
use ferry::config::Config;
use ferry::domain::{Actor, Name, Origin, Outcome};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const CONFIG: &str = r#"[store]
url = "sqlite://ferry.db"
seed = "environments"

[deployers.none]
kind = "noop"

[environments.staging]
deployer = "none"

[environments.production]
deployer = "none"
protected = true
approvals = 1

[roles]
viewer   = ["read"]
writer   = ["read", "write:staging"]
deployer = ["read", "write:staging", "converge:staging"]
releaser = ["read", "write:*", "converge:*", "approve:*"]

[users]
"shell:alice" = ["deployer"]
"shell:wes"   = ["writer"]
"shell:rhea"  = ["releaser"]
default = ["viewer"]
"#;

const STAGING_SEED: &str = r#"[services.ms-users]
version = "3.5.6"

[services.ms-billing]
version = "1.2.0"
"#;

/// A config folder (ferry.toml, the staging seed) with an empty `commands/` folder beside it.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new().expect("temp dir");
        std::fs::write(dir.path().join("ferry.toml"), CONFIG).expect("write ferry.toml");
        std::fs::create_dir(dir.path().join("environments")).expect("mkdir environments");
        for env in ["staging", "production"] {
            std::fs::write(
                dir.path().join(format!("environments/{env}.toml")),
                STAGING_SEED,
            )
            .expect("write a seed");
        }
        std::fs::create_dir(dir.path().join("commands")).expect("mkdir commands");
        Fixture { dir }
    }

    fn commands_dir(&self) -> PathBuf {
        self.dir.path().join("commands")
    }

    /// Writes `commands/<name>` with `text`.
    fn command_file(&self, name: &str, text: &str) {
        std::fs::write(self.commands_dir().join(name), text).expect("write a commands file");
    }

    fn load(&self) -> CustomCommands {
        CustomCommands::load(&self.commands_dir())
            .unwrap_or_else(|e| panic!("the commands should load: {e}"))
    }

    async fn app(&self) -> App {
        let path = self.dir.path().join("ferry.toml");
        let config = Config::parse(CONFIG, "test", Some(path), self.dir.path()).expect("config");
        App::start(config).await.expect("start the app")
    }
}

/// Writes an executable `sh` script `name` into `dir`.
///
/// The file is written by a child `sh`, never opened for writing by this (multi-threaded) test
/// process: otherwise another test forking at that moment could inherit the write descriptor,
/// and executing the script would fail with "Text file busy".
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    let text = format!("#!/bin/sh\n{body}\n");
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", r#"printf '%s' "$1" > "$2" && chmod 755 "$2""#, "sh"])
        .arg(&text)
        .arg(&path)
        .status()
        .expect("run sh to write a script");
    assert!(status.success(), "cannot write {}", path.display());
}

fn parse(commands: &CustomCommands, text: &str) -> Invocation {
    match commands.parse(text) {
        Some(Ok(invocation)) => invocation,
        Some(Err(e)) => panic!("`{text}` should parse: {e:?}"),
        None => panic!("`{text}` should be a user-defined command"),
    }
}

fn parse_error(commands: &CustomCommands, text: &str) -> (String, Option<String>) {
    match commands.parse(text) {
        Some(Err(e)) => (e.message, e.try_instead),
        Some(Ok(inv)) => panic!("`{text}` should not parse, got {inv:?}"),
        None => panic!("`{text}` should be a user-defined command"),
    }
}

/// Parses `text` and runs it as `user` (on the shell), the way `run` does but without auditing.
async fn run(app: &App, commands: &CustomCommands, user: &str, text: &str) -> Reply {
    let invocation = parse(commands, text);
    let actor = Actor::new("shell", user, user);
    let origin = Origin::shell();
    let ctx = Context {
        commands,
        engine: &app.engine,
        events: None,
        config: &app.config,
        store: app.store.as_ref(),
        clock: app.clock.as_ref(),
        actor: &actor,
        origin: &origin,
        text,
    };
    invocation
        .execute(&ctx)
        .await
        .unwrap_or_else(|e| Reply::from_error(&e))
}

fn texts(reply: &Reply) -> Vec<String> {
    reply
        .blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) => t.clone(),
            Block::Next { label, command } => format!("{label}: {command}"),
            other => format!("{other:?}"),
        })
        .collect()
}

fn staging() -> Name {
    Name::parse("staging").unwrap()
}

/// The head revision of staging: its number, ms-users' version and its reason.
async fn head(app: &App) -> (u64, String, Option<String>) {
    let rev = app.store.head(&staging()).await.unwrap().expect("a head");
    let version = rev
        .document
        .get(
            &Name::parse("ms-users").unwrap(),
            &ferry::domain::KeyPath::version(),
        )
        .unwrap_or_default()
        .to_string();
    (rev.meta.number, version, rev.meta.reason)
}

async fn deploy_count(app: &App) -> usize {
    app.store.deploys(&staging(), 50).await.unwrap().len()
}

fn shipped() -> CustomCommands {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("commands");
    CustomCommands::load(&dir).unwrap_or_else(|e| panic!("the shipped commands must load: {e}"))
}

const SHIP_LIKE: &str = r#"pattern = "release {service} {version} to {env}"
help = "Set a version and deploy."
permission = "write:{env}"
steps = ["env {env}.{service}.version {version} -- {reason}", "converge {env}"]
"#;

#[test]
fn patterns_match_literal_words_and_one_word_params() {
    let fx = Fixture::new();
    fx.command_file("release.toml", SHIP_LIKE);
    let commands = fx.load();

    let inv = parse(&commands, "release ms-users 3.5.7 to staging");
    assert_eq!(inv.name(), "release");
    assert_eq!(inv.param("service"), Some("ms-users"));
    assert_eq!(inv.param("version"), Some("3.5.7"));
    assert_eq!(inv.env(), Some(&staging()));
    assert_eq!(
        inv.steps().unwrap(),
        [
            "env staging.ms-users.version 3.5.7 -- release ms-users 3.5.7 to staging",
            "converge staging",
        ]
    );

    // Literal words and the name ignore case; a typed reason replaces the default one.
    let inv = parse(
        &commands,
        "Release ms-users 1.0.0-rc.1+b5 TO staging -- INC-42: hotfix",
    );
    assert_eq!(inv.param("version"), Some("1.0.0-rc.1+b5"));
    assert_eq!(
        inv.steps().unwrap()[0],
        "env staging.ms-users.version 1.0.0-rc.1+b5 -- INC-42: hotfix"
    );

    // Not a user-defined command: the built-in parser's business.
    assert!(commands.parse("status staging").is_none());
    assert!(commands.parse("releases ms-users").is_none());
    assert!(commands.parse("").is_none());
    assert!(
        CustomCommands::empty()
            .parse("release a 1 to staging")
            .is_none()
    );
}

#[test]
fn words_that_do_not_fit_show_the_pattern_as_usage() {
    let fx = Fixture::new();
    fx.command_file("release.toml", SHIP_LIKE);
    let commands = fx.load();
    let usage = Some("release <service> <version> to <env> [-- reason]".to_string());

    let (message, try_instead) = parse_error(&commands, "release ms-users 3.5.7");
    assert!(message.contains("missing `to`"), "{message}");
    assert_eq!(try_instead, usage);

    let (message, try_instead) = parse_error(&commands, "release ms-users 3.5.7 to");
    assert!(message.contains("missing <env>"), "{message}");
    assert_eq!(try_instead, usage);

    let (message, _) = parse_error(&commands, "release ms-users 3.5.7 into staging");
    assert!(
        message.contains("expected `to` where `into` is"),
        "{message}"
    );

    let (message, try_instead) = parse_error(&commands, "release ms-users 3.5.7 to staging now");
    assert!(message.contains("unexpected `now`"), "{message}");
    assert_eq!(try_instead, usage);

    // Lexing errors belong to the command too, once its name is recognised.
    let (message, _) = parse_error(&commands, "release \"ms-users 3.5.7 to staging");
    assert!(message.contains("quote"), "{message}");
}

#[test]
fn hostile_values_are_refused_before_anything_runs() {
    let fx = Fixture::new();
    fx.command_file("release.toml", SHIP_LIKE);
    fx.command_file(
        "probe.toml",
        "pattern = \"probe {target}\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"status {target}\"]\n",
    );
    let commands = fx.load();
    for (text, expected) in [
        (
            "release ms-users $(reboot) to staging",
            "`$` is not allowed",
        ),
        ("release ms-users `id` to staging", "is not allowed"),
        ("release ms-users 1;id to staging", "`;` is not allowed"),
        ("release ms-users a\"b to staging", "`\"` is not allowed"),
        ("release ms-users 'a b' to staging", "U+0020 is not allowed"),
        (
            "release ms-users --force to staging",
            "must not start with `-`",
        ),
        ("release ms-users -x to staging", "must not start with `-`"),
        ("release ms-users \"\" to staging", "it is empty"),
        ("release ms-users 1 to Staging", "not a valid name"),
        ("release ms_users 1 to staging", "not a valid name"),
        (
            "probe ../etc",
            "`../etc` is not a valid <target>: `..` is not allowed",
        ),
    ] {
        let (message, try_instead) = parse_error(&commands, text);
        assert!(message.contains(expected), "`{text}`: {message}");
        assert!(try_instead.is_some(), "`{text}` should show the usage");
    }
    // A reason is only accepted by commands that use one.
    let (message, _) = parse_error(&commands, "probe staging -- why not");
    assert!(message.contains("takes no reason"), "{message}");
    // Quoting a harmless value is fine.
    assert_eq!(
        parse(&commands, "release 'ms-users' \"3.5.7\" to staging").param("version"),
        Some("3.5.7")
    );
}

#[tokio::test]
async fn the_shipped_ship_command_sets_the_version_and_deploys_it() {
    let fx = Fixture::new();
    let app = fx.app().await;
    let commands = shipped();

    let reply = run(&app, &commands, "alice", "ship ms-users 3.5.7 to staging").await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:#?}");
    assert_eq!(reply.headline, "ship: 2 of 2 steps done");
    let lines = texts(&reply);
    assert!(
        lines[0].starts_with(
            "1. env staging.ms-users.version 3.5.7 -- ship ms-users 3.5.7 to staging: staging@2"
        ),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("2. converge staging: "), "{lines:?}");
    let (number, version, reason) = head(&app).await;
    assert_eq!((number, version.as_str()), (2, "3.5.7"));
    assert_eq!(reason.as_deref(), Some("ship ms-users 3.5.7 to staging"));
    assert_eq!(deploy_count(&app).await, 1);
    // The last step's detail (the deploy table) is the command's.
    assert!(
        reply
            .blocks
            .iter()
            .any(|b| matches!(b, Block::Table { .. })),
        "{reply:#?}"
    );

    let reply = run(
        &app,
        &commands,
        "alice",
        "ship ms-users 3.5.8 to staging -- INC-7",
    )
    .await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:#?}");
    assert_eq!(head(&app).await.2.as_deref(), Some("INC-7"));
}

#[tokio::test]
async fn shipping_to_an_environment_that_needs_approval_says_what_to_type_next() {
    let fx = Fixture::new();
    let app = fx.app().await;
    let reply = run(
        &app,
        &shipped(),
        "rhea",
        "ship ms-users 3.5.7 to production",
    )
    .await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:#?}");
    let lines = texts(&reply);
    assert!(
        lines.iter().any(|l| l == "To approve: approve 1"),
        "the approval request's next command is kept: {lines:?}"
    );
    assert!(
        reply.blocks.iter().any(|b| matches!(b, Block::Buttons(_))),
        "and its buttons: {lines:?}"
    );
    let production = Name::parse("production").unwrap();
    assert!(app.store.deploys(&production, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_step_stops_the_command_and_what_came_before_stays() {
    let fx = Fixture::new();
    fx.command_file(
        "bump.toml",
        r#"pattern = "bump {env} {version}"
help = "Bump ms-users, then a service that does not exist, then deploy."
permission = "write:{env}"
steps = [
  "env {env}.ms-users.version {version}",
  "env {env}.nosuchservice.version {version}",
  "converge {env}",
]
"#,
    );
    let commands = fx.load();
    let app = fx.app().await;

    let reply = run(&app, &commands, "alice", "bump staging 4.0.0").await;
    assert_eq!(reply.outcome, Outcome::Failed, "{reply:#?}");
    assert!(
        reply.headline.starts_with(
            "bump: step 2 of 3 (env staging.nosuchservice.version 4.0.0) failed: staging has no service `nosuchservice`"
        ),
        "{}",
        reply.headline
    );
    let lines = texts(&reply);
    assert!(
        lines[0].starts_with("1. env staging.ms-users.version 4.0.0: staging@2"),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "2. env staging.nosuchservice.version 4.0.0: failed"
    );
    assert!(
        lines.contains(&"3. converge staging: not run".to_string()),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "Step 1 took effect and was not undone."
    );
    assert!(
        !lines.contains(&"Nothing changed.".to_string()),
        "{lines:?}"
    );

    // Step 1's revision is kept; step 2 wrote nothing; step 3 never ran.
    let (number, version, _) = head(&app).await;
    assert_eq!((number, version.as_str()), (2, "4.0.0"));
    assert_eq!(deploy_count(&app).await, 0);
}

#[tokio::test]
async fn a_step_the_user_may_not_run_is_refused_even_inside_a_command() {
    // wes may write staging but not converge it: `ship`'s own permission (write) lets him in,
    // and step 2 checks `converge:staging` as it would if he had typed it.
    let fx = Fixture::new();
    let app = fx.app().await;
    let reply = run(&app, &shipped(), "wes", "ship ms-users 3.5.7 to staging").await;
    assert_eq!(reply.outcome, Outcome::Failed, "{reply:#?}");
    assert!(
        reply
            .headline
            .starts_with("ship: step 2 of 2 (converge staging) failed: wes is not allowed"),
        "{}",
        reply.headline
    );
    assert!(texts(&reply).contains(&"2. converge staging: refused".to_string()));
    assert_eq!(head(&app).await.1, "3.5.7");
    assert_eq!(deploy_count(&app).await, 0);
}

#[tokio::test]
async fn the_commands_own_permission_and_environment_are_checked_before_any_step() {
    let fx = Fixture::new();
    let app = fx.app().await;
    let commands = shipped();

    // carol is a viewer: refused up front, and nothing at all ran.
    let reply = run(&app, &commands, "carol", "ship ms-users 3.5.7 to staging").await;
    assert_eq!(reply.outcome, Outcome::Refused, "{reply:#?}");
    assert!(
        reply.headline.contains("`write:staging` permission"),
        "{}",
        reply.headline
    );
    assert!(texts(&reply).contains(&"Nothing changed.".to_string()));
    assert_eq!(head(&app).await.0, 1);

    // An unknown environment is named, with the corrected command to type.
    let reply = run(&app, &commands, "alice", "ship ms-users 3.5.7 to stagin").await;
    assert_eq!(reply.outcome, Outcome::Failed);
    assert!(
        reply.headline.contains("did you mean `staging`"),
        "{}",
        reply.headline
    );
    assert!(
        texts(&reply).contains(&"Try: ship ms-users 3.5.7 to staging".to_string()),
        "{reply:#?}"
    );
    assert_eq!(head(&app).await.0, 1);
}

#[tokio::test]
async fn a_program_gets_its_values_as_argv_and_ferry_param_variables() {
    let fx = Fixture::new();
    script(
        &fx.commands_dir(),
        "record.sh",
        r#"printf '%s\n' "$@" > args.out
env | grep '^FERRY_' | sort > env.out
echo recorded $# arguments"#,
    );
    fx.command_file(
        "record.toml",
        r#"pattern = "record {env} {target} {tag}"
help = "Record what it is given."
permission = "read"
program = "record.sh"
args = ["--env={env}", "{target}", "{tag}", "{reason}"]
"#,
    );
    let commands = fx.load();
    let app = fx.app().await;
    let text = "record staging web/1:2@x a,b=c -- it's $(whoami); `id` > /tmp/x";
    let reply = run(&app, &commands, "alice", text).await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:#?}");
    assert_eq!(
        reply.headline,
        "record staging web/1:2@x a,b=c: done: recorded 4 arguments"
    );

    // Each value is one argv word, exactly as typed: no shell saw the reason.
    let args = std::fs::read_to_string(fx.commands_dir().join("args.out")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "--env=staging",
            "web/1:2@x",
            "a,b=c",
            "it's $(whoami); `id` > /tmp/x"
        ]
    );
    let env = std::fs::read_to_string(fx.commands_dir().join("env.out")).unwrap();
    for expected in [
        "FERRY_ACTOR=shell:alice",
        "FERRY_COMMAND=record",
        "FERRY_PARAM_ENV=staging",
        "FERRY_PARAM_TAG=a,b=c",
        "FERRY_PARAM_TARGET=web/1:2@x",
        "FERRY_REASON=it's $(whoami); `id` > /tmp/x",
        &format!("FERRY_CONFIG_DIR={}", fx.dir.path().display()),
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "missing {expected} in:\n{env}"
        );
    }
}

#[tokio::test]
async fn a_failing_program_replies_with_the_tail_of_its_output() {
    let fx = Fixture::new();
    script(
        &fx.commands_dir(),
        "fail.sh",
        r#"i=1; while [ $i -le 20 ]; do echo "line $i"; i=$((i + 1)); done
echo "no healthy pods in $1" >&2
exit 3"#,
    );
    fx.command_file(
        "check.toml",
        "pattern = \"check {env}\"\nhelp = \"Fail loudly.\"\npermission = \"read\"\nprogram = \"fail.sh\"\nargs = [\"{env}\"]\n",
    );
    let app = fx.app().await;
    let reply = run(&app, &fx.load(), "carol", "check staging").await;
    assert_eq!(reply.outcome, Outcome::Failed, "{reply:#?}");
    assert_eq!(
        reply.headline,
        "check staging: fail.sh failed (exit status 3): no healthy pods in staging"
    );
    let lines = texts(&reply);
    assert_eq!(lines[0], "Output of fail.sh (last lines):");
    assert!(lines.contains(&"  line 20".to_string()), "{lines:?}");
    assert!(
        !lines.contains(&"  line 5".to_string()),
        "only the tail: {lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "  no healthy pods in staging");
}

#[tokio::test]
async fn a_program_that_runs_past_its_timeout_is_killed() {
    let fx = Fixture::new();
    script(
        &fx.commands_dir(),
        "hang.sh",
        "echo started\nsleep 30 & sleep 30",
    );
    fx.command_file(
        "hang.toml",
        "pattern = \"hang\"\nhelp = \"Hang.\"\npermission = \"read\"\nprogram = \"hang.sh\"\ntimeout = \"1s\"\n",
    );
    let app = fx.app().await;
    let started = Instant::now();
    let reply = run(&app, &fx.load(), "carol", "hang").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(reply.outcome, Outcome::Failed, "{reply:#?}");
    assert_eq!(
        reply.headline,
        "hang: hang.sh timed out after 1s and was killed"
    );
    assert!(
        reply.headline.contains("timed out after 1s"),
        "{}",
        reply.headline
    );
    assert!(
        texts(&reply).contains(&"  started".to_string()),
        "{reply:#?}"
    );
}

#[tokio::test]
async fn the_shipped_smoke_command_checks_the_demo_deployers_state() {
    let fx = Fixture::new();
    let app = fx.app().await;
    let commands = shipped();

    let reply = run(&app, &commands, "carol", "smoke staging").await;
    assert_eq!(reply.outcome, Outcome::Failed, "{reply:#?}");
    assert!(
        reply.headline.contains("nothing is deployed in staging"),
        "{}",
        reply.headline
    );

    let state = fx.dir.path().join("state/staging");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("ms-users"), "3.5.6\n").unwrap();
    std::fs::write(state.join("ms-billing"), "1.2.0\n").unwrap();
    let reply = run(&app, &commands, "carol", "smoke staging").await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:#?}");
    assert_eq!(
        reply.headline,
        "smoke staging: done: 2 service(s) running in staging"
    );
    assert!(
        texts(&reply).contains(&"  ok   ms-users 3.5.6".to_string()),
        "{reply:#?}"
    );
}

#[test]
fn the_shipped_commands_load_and_are_listed_by_help() {
    let commands = shipped();
    assert_eq!(commands.names().collect::<Vec<_>>(), ["ship", "smoke"]);
    let rows = commands.help_rows();
    assert_eq!(
        rows[0],
        (
            "ship <service> <version> to <env> [-- reason]".to_string(),
            "Set a service's version in an environment and deploy it.".to_string()
        )
    );
    assert_eq!(rows[1].0, "smoke <env>");
    let ship = commands.help_for("SHIP").expect("help for ship");
    for expected in [
        "Needs the `write:<env>` permission.",
        "1. env <env>.<service>.version <version> -- <reason>",
        "2. converge <env>",
        "ship.toml",
    ] {
        assert!(ship.contains(expected), "missing {expected:?} in:\n{ship}");
    }
    let smoke = commands.help_for("smoke").expect("help for smoke");
    assert!(
        smoke.contains("Runs `scripts/smoke.sh <env>` (no shell; stopped after 30s)"),
        "{smoke}"
    );
    assert!(commands.help_for("status").is_none());
}

#[test]
fn a_missing_folder_is_an_empty_set() {
    let dir = TempDir::new().unwrap();
    let commands = CustomCommands::load(&dir.path().join("nope")).unwrap();
    assert!(commands.is_empty());
    assert!(commands.help_rows().is_empty());
}

/// Loads a folder holding only `files`, expecting an error.
fn load_error(files: &[(&str, &str)]) -> ferry::config::ConfigError {
    let fx = Fixture::new();
    script(&fx.commands_dir(), "present.sh", "exit 0");
    for (name, text) in files {
        fx.command_file(name, text);
    }
    match CustomCommands::load(&fx.commands_dir()) {
        Err(e) => e,
        Ok(_) => panic!("{files:?} should not load"),
    }
}

/// Asserts that `error` is about `file`, at `line`, saying `expected`.
fn assert_error(error: &ferry::config::ConfigError, file: &str, line: usize, expected: &str) {
    assert!(error.file.ends_with(&format!("commands/{file}")), "{error}");
    assert_eq!(error.line, Some(line), "{error}");
    assert!(error.message.contains(expected), "{error}");
    assert!(
        error.to_string().contains(&format!("{file}:{line}: ")),
        "{error}"
    );
}

#[test]
fn a_malformed_commands_file_names_the_file_and_the_line() {
    // A typo in a key: the nearest valid key is suggested.
    let e = load_error(&[(
        "a.toml",
        "pattern = \"a {env}\"\nhelp = \"x\"\npermision = \"read\"\nsteps = [\"status {env}\"]\n",
    )]);
    assert_error(
        &e,
        "a.toml",
        3,
        "unknown key `permision`: did you mean `permission`?",
    );

    // A step naming a parameter the pattern does not declare.
    let e = load_error(&[(
        "b.toml",
        r#"pattern = "b {env} {version}"
help = "x"
permission = "write:{env}"
steps = [
  "env {env}.ms-users.version {version}",
  "converge {envv}",
]
"#,
    )]);
    assert_error(
        &e,
        "b.toml",
        6,
        "`{envv}` is not a parameter of the pattern: did you mean `{env}`?",
    );

    // Both kinds of command at once.
    let e = load_error(&[(
        "c.toml",
        "pattern = \"c\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"envs\"]\nprogram = \"present.sh\"\n",
    )]);
    assert_error(&e, "c.toml", 5, "either `steps`");

    // Neither.
    let e = load_error(&[(
        "d.toml",
        "help = \"x\"\npattern = \"d\"\npermission = \"read\"\n",
    )]);
    assert_error(&e, "d.toml", 2, "nothing to run");

    // A name a built-in command already has.
    let e = load_error(&[(
        "e.toml",
        "\npattern = \"env {env} reset\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"envs\"]\n",
    )]);
    assert_error(&e, "e.toml", 2, "`env` is a built-in command");

    // Two files defining one name: the second is at fault, and the first is named.
    let text = "pattern = \"twice\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"envs\"]\n";
    let e = load_error(&[("f1.toml", text), ("f2.toml", text)]);
    assert_error(&e, "f2.toml", 1, "already defined in");
    assert!(e.message.contains("f1.toml"), "{e}");

    // A permission that is not one.
    let e = load_error(&[(
        "g.toml",
        "pattern = \"g {env}\"\nhelp = \"x\"\npermission = \"writ:{env}\"\nsteps = [\"status {env}\"]\n",
    )]);
    assert_error(&e, "g.toml", 3, "did you mean `write`?");
    let e = load_error(&[(
        "g.toml",
        "pattern = \"g {env}\"\nhelp = \"x\"\npermission = \"write:*\"\nsteps = [\"status {env}\"]\n",
    )]);
    assert_error(&e, "g.toml", 3, "name one environment");

    // A step that is not a built-in command, one that would not parse, and a reason out of place.
    let e = load_error(&[(
        "h.toml",
        "pattern = \"h {env}\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"status {env}\",\n  \"conver {env}\"]\n",
    )]);
    assert_error(&e, "h.toml", 5, "did you mean `converge`?");
    let e = load_error(&[(
        "h.toml",
        "pattern = \"h\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"converge staging --forse\"]\n",
    )]);
    assert_error(&e, "h.toml", 4, "--forse");
    let e = load_error(&[(
        "h.toml",
        "pattern = \"h {env}\"\nhelp = \"x\"\npermission = \"write:{env}\"\nsteps = [\"env {env}.a.version {reason}\"]\n",
    )]);
    assert_error(&e, "h.toml", 4, "after a standalone `--`");

    // A program that is not there, and options of programs given to steps.
    let e = load_error(&[(
        "i.toml",
        "pattern = \"i\"\nhelp = \"x\"\npermission = \"read\"\nprogram = \"missing.sh\"\n",
    )]);
    assert_error(&e, "i.toml", 4, "program `missing.sh`");
    let e = load_error(&[(
        "i.toml",
        "pattern = \"i\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"envs\"]\ntimeout = \"5s\"\n",
    )]);
    assert_error(&e, "i.toml", 5, "`timeout` only applies to a `program`");

    // Patterns: a parameter declared twice, a parameter glued to text, an unused parameter.
    let e = load_error(&[(
        "j.toml",
        "help = \"x\"\npattern = \"j {env} {env}\"\npermission = \"read\"\nsteps = [\"status {env}\"]\n",
    )]);
    assert_error(&e, "j.toml", 2, "appears twice");
    let e = load_error(&[(
        "j.toml",
        "pattern = \"j v{version}\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"envs\"]\n",
    )]);
    assert_error(&e, "j.toml", 1, "a parameter is a whole word");
    let e = load_error(&[(
        "j.toml",
        "pattern = \"j {env} {service}\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"status {env}\"]\n",
    )]);
    assert_error(&e, "j.toml", 1, "`{service}` is not used");

    // A bad duration and a missing key go through the TOML parser's own errors.
    let e = load_error(&[(
        "k.toml",
        "pattern = \"k\"\nhelp = \"x\"\npermission = \"read\"\nprogram = \"present.sh\"\ntimeout = \"soon\"\n",
    )]);
    assert_error(&e, "k.toml", 5, "soon");
    let e = load_error(&[(
        "k.toml",
        "pattern = \"k\"\nhelp = \"x\"\nsteps = [\"envs\"]\n",
    )]);
    assert!(e.message.contains("permission"), "{e}");
}

/// The reason is free text: one starting with `-` where it would begin an argument is refused
/// before the program runs, with a message saying what to type; after a literal prefix it is
/// one harmless argument.
#[tokio::test]
async fn a_reason_that_would_be_read_as_an_option_never_reaches_the_program() {
    let fx = Fixture::new();
    script(
        &fx.commands_dir(),
        "note.sh",
        r#"printf '[%s]' "$@" >> args.out"#,
    );
    fx.command_file(
        "note.toml",
        r#"pattern = "note {env}"
help = "Note something."
permission = "read"
program = "note.sh"
args = ["{env}", "{reason}"]
"#,
    );
    fx.command_file(
        "tag.toml",
        r#"pattern = "tag {env}"
help = "Tag something."
permission = "read"
program = "note.sh"
args = ["-m", "--message={reason}"]
"#,
    );
    let commands = fx.load();

    let (message, _) = parse_error(&commands, "note staging -- --upload-pack=touch pwned");
    assert_eq!(
        message,
        "value of {reason} (`--upload-pack=touch pwned`) starts with '-', which the program \
         would read as an option, so nothing was run; type a reason that does not start with \
         '-', or give the argument a literal prefix in the command's `args` (like \
         `--reason={reason}`)"
    );

    let app = fx.app().await;
    let reply = run(
        &app,
        &commands,
        "alice",
        "tag staging -- --upload-pack=touch pwned",
    )
    .await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:#?}");
    assert_eq!(
        std::fs::read_to_string(fx.commands_dir().join("args.out")).unwrap(),
        "[-m][--message=--upload-pack=touch pwned]"
    );
    assert!(!fx.commands_dir().join("pwned").exists());
}

/// A program of a user-defined command sees the allowlisted environment, the `FERRY_*`
/// variables of its run and what `pass_env` names; not ferry's secrets.
#[tokio::test]
async fn a_program_gets_an_allowlisted_environment_and_pass_env() {
    // SAFETY: only this test reads these variables; std serialises its environment access.
    unsafe {
        std::env::set_var("DISCORD_TOKEN", "discord-secret-token");
        std::env::set_var("FERRY_TEST_CUSTOM_PASSED", "passed-value");
    }
    let fx = Fixture::new();
    script(&fx.commands_dir(), "env.sh", "env > env.out");
    fx.command_file(
        "envdump.toml",
        r#"pattern = "envdump {env}"
help = "Dump the environment."
permission = "read"
program = "env.sh"
pass_env = ["FERRY_TEST_CUSTOM_PASSED"]
"#,
    );
    let commands = fx.load();
    let app = fx.app().await;
    let reply = run(&app, &commands, "alice", "envdump staging").await;
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:#?}");
    let env = std::fs::read_to_string(fx.commands_dir().join("env.out")).unwrap();
    assert!(!env.contains("discord-secret-token"), "{env}");
    for expected in [
        format!("PATH={}", std::env::var("PATH").unwrap()),
        "FERRY_PARAM_ENV=staging".to_string(),
        "FERRY_TEST_CUSTOM_PASSED=passed-value".to_string(),
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "lacks {expected}:\n{env}"
        );
    }

    // A name that is not a variable name, or pass_env with steps, is an error at load time.
    let e = load_error(&[(
        "a.toml",
        "pattern = \"a\"\nhelp = \"x\"\npermission = \"read\"\nprogram = \"present.sh\"\npass_env = [\"A-B\"]\n",
    )]);
    assert_error(
        &e,
        "a.toml",
        5,
        "pass_env: `A-B` is not an environment variable name",
    );
    let e = load_error(&[(
        "a.toml",
        "pattern = \"a\"\nhelp = \"x\"\npermission = \"read\"\nsteps = [\"envs\"]\npass_env = [\"A\"]\n",
    )]);
    assert_error(
        &e,
        "a.toml",
        5,
        "`pass_env` only applies to a `program`, not to `steps`",
    );
}
