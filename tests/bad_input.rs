//! Bad input changes nothing (replies that say so, atomic writes, the audit trail, no
//! injection): every malformed, hostile, misspelt or forbidden command run through `ferry run`
//! exits 1 with a reason headline, a `Try:` line and "Nothing changed."; no shell ever sees a
//! value (no `pwned*` file appears); the state (the SQLite rows of `revisions`,
//! `revision_services`, `locks`, `applied`, `deploys` and `pins`, and what `history`, `env`,
//! `envs`, `status` and `deploys` show) is byte-for-byte the same afterwards; and the attempt
//! itself is audited with its outcome. A single `ferry shell`
//! session fed ~200 random and hostile lines answers every non-empty line with a headline and
//! exits 0.

mod common;

use common::{Fixture, Run, table_rows};
use ferry::chat::addressing::shell_command;
use ferry::command::{MAX_LINE_BYTES, parse};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::path::Path;

/// One bad command and what its reply must say.
struct Case {
    command: String,
    user: &'static str,
    /// `failed` for bad input, `refused` for policy.
    outcome: &'static str,
    /// Text the reply must contain (case-sensitive).
    mentions: Vec<String>,
    /// The exact command the `Try:` line must suggest, when it is a correction.
    try_is: Option<String>,
}

fn case(command: impl Into<String>) -> Case {
    Case {
        command: command.into(),
        user: "alice",
        outcome: "failed",
        mentions: Vec::new(),
        try_is: None,
    }
}

impl Case {
    fn by(mut self, user: &'static str) -> Case {
        self.user = user;
        self
    }

    fn refused(mut self) -> Case {
        self.outcome = "refused";
        self
    }

    fn mentions(mut self, text: impl Into<String>) -> Case {
        self.mentions.push(text.into());
        self
    }

    fn suggests(mut self, command: impl Into<String>) -> Case {
        self.try_is = Some(command.into());
        self
    }
}

fn cases() -> Vec<Case> {
    let big_value = "x".repeat(5000);
    let big_line_value = "y".repeat(MAX_LINE_BYTES + 100);
    let long_version = "1".repeat(129);
    vec![
        // Unknown and misspelt names.
        case("frobnicate staging")
            .mentions("unknown command")
            .mentions("frobnicate"),
        case("histroy staging").mentions("did you mean `history`"),
        case("env nosuchenv.ms-users.version 1.0")
            .mentions("nosuchenv")
            .mentions("staging"),
        case("env stagign.ms-users.version 1.0")
            .mentions("did you mean `staging`")
            .suggests("env staging.ms-users.version 1.0"),
        case("history stagign").suggests("history staging"),
        case("diff production prod")
            .mentions("did you mean `production`")
            .suggests("diff production production"),
        case("env Staging!!.ms-users.version 1.0").mentions("not a valid name"),
        case("env stagíng.ms-users.version 1.0").mentions("not a valid name"),
        case("env ../../etc.ms-users.version 1.0"),
        case(format!("env {}.ms-users.version 1.0", "a".repeat(70))).mentions("at most 63"),
        case("env staging.ms-userz.version 1")
            .mentions("did you mean `ms-users`")
            .suggests("env staging.ms-users.version 1"),
        case("unset staging.ms-userz").suggests("unset staging.ms-users"),
        case("env staging.ms-newsvc.version 1.0")
            .mentions("no service `ms-newsvc`")
            .mentions("--new"),
        case("env staging.ms-users..version 1").mentions("not a valid key"),
        // Shell metacharacters: rejected as versions, never run.
        case("env staging.ms-users.version $(touch pwned)").mentions("not a valid version"),
        case("env staging.ms-billing.version 1.2.1;touch pwned2").mentions("not a valid version"),
        case("env staging.ms-users.version `touch pwned3`").mentions("not a valid version"),
        case("env staging.ms-users.version 1.0|touch pwned4").mentions("not a valid version"),
        case("env staging.ms-users.version 1.0&&touch pwned5").mentions("not a valid version"),
        case("env staging.ms-users.config.X $(touch pwned6)").mentions("unexpected `pwned6)`"),
        case(format!("env staging.ms-users.version {long_version}"))
            .mentions("not a valid version"),
        // Control characters (NUL cannot be passed in argv).
        case("env staging.ms-users.version 1.0\x07").mentions("control character"),
        case("env staging.ms-users.config.X \x1b[31mred").mentions("control character"),
        case("env staging.ms-users.config.X a\u{9b}31mb").mentions("control character"),
        case("env staging.ms-users.config.X a\rb").mentions("control character"),
        case("env\tstaging.ms-users.version 1.0").mentions("control character"),
        // Sizes.
        case(format!("env staging.ms-users.config.X {big_value}")).mentions("4096"),
        case(format!("env staging.ms-users.config.X {big_line_value}")).mentions("limit"),
        // Quoting and leftovers.
        case("env staging.ms-users.version \"1.0").mentions("not closed"),
        case("env staging.ms-users.config.X 'a b").mentions("not closed"),
        case("env staging.ms-users.version \"\"").mentions("empty"),
        case("env staging.ms-users.version 1.0 extra").mentions("unexpected `extra`"),
        case("envs -- because").mentions("reason"),
        // Commands missing what they need.
        case("env").mentions("missing"),
        case("history").mentions("missing"),
        case("diff").mentions("missing"),
        case("promote staging").mentions("destination"),
        case("promote staging staging").mentions("into itself"),
        case("lock").mentions("missing"),
        case("unlock").mentions("missing"),
        case("help frobnicate").mentions("frobnicate"),
        case("converge").mentions("missing"),
        case("plan").mentions("missing"),
        case("status").mentions("missing"),
        case("rollback").mentions("missing"),
        case("unpin").mentions("missing"),
        // Converge and friends on bad targets.
        case("converge stagign").suggests("converge staging"),
        case("plan nosuchenv").mentions("staging"),
        case("unpin nosuchenv").mentions("staging"),
        case("converge staging --bogus").mentions("`--bogus` is not an option"),
        case("rollback staging to 999").mentions("999"),
        case("rollback staging to x").mentions("not a revision number"),
        case("deploys staging --limit 0").mentions("--limit 0"),
        // Bad options.
        case("history staging --limit 0").mentions("--limit 0"),
        case("history staging --limit -1").mentions("--limit -1"),
        case("history staging --limit 99999999999999999999").mentions("1 to 1000"),
        case("history staging --limit").mentions("needs a value"),
        case("history staging --verbose").mentions("`--verbose` is not an option"),
        case("envs --bogus").mentions("`--bogus` is not an option"),
        case("env staging.ms-users.version 1.0 --force").mentions("`--force` is not an option"),
        case("lock staging --for forever").mentions("not a duration"),
        case("diff staging 0").mentions("not a revision number"),
        // Policy: refused, and still nothing changes.
        case("env staging.ms-users.version 9.9.9")
            .by("carol")
            .refused()
            .mentions("write:staging"),
        case("env production.ms-users.version 9.9.9")
            .refused()
            .mentions("write:production"),
        case("env production.ms-users.version 9.9.9")
            .by("dana")
            .refused()
            .mentions("locked by bob"),
        case("unlock production")
            .by("dana")
            .refused()
            .mentions("bob"),
        case("converge production")
            .refused()
            .mentions("converge:production"),
        case("converge production")
            .by("dana")
            .refused()
            .mentions("bob"),
        case("promote production staging")
            .by("bob")
            .refused()
            .mentions("does not promote to staging"),
    ]
}

/// Tables that hold desired state, and (when the schema has them) applied state, deploys and
/// pins: none may change when a command fails. `audit` is left out on purpose: every attempt is
/// recorded there.
const STATE_TABLES: &[&str] = &["revisions", "revision_services", "locks"];
const OPTIONAL_STATE_TABLES: &[&str] = &["applied", "deploys", "pins"];

/// Every row of the state tables, rendered with SQLite's `quote()` so that types and bytes are
/// compared exactly.
async fn dump_desired_state(db: &Path) -> String {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .expect("open the SQLite store");
    let mut out = String::new();
    let tables = STATE_TABLES
        .iter()
        .map(|t| (t, true))
        .chain(OPTIONAL_STATE_TABLES.iter().map(|t| (t, false)));
    for (table, required) in tables {
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        )))
        .fetch_all(&mut conn)
        .await
        .expect("read the table's columns");
        if columns.is_empty() {
            assert!(!required, "table {table} is missing");
            continue;
        }
        let row = columns
            .iter()
            .map(|c| format!("quote({c})"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {row} FROM {table} ORDER BY 1"
        )))
        .fetch_all(&mut conn)
        .await
        .expect("read the table");
        out.push_str(&format!("## {table} ({} rows)\n", rows.len()));
        for row in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    conn.close().await.expect("close");
    out
}

/// The newest audit entry and the number of entries.
async fn last_audit(db: &Path) -> (i64, (String, String, String)) {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .expect("open the SQLite store");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(&mut conn)
        .await
        .expect("count audit entries");
    let last: (String, String, String) =
        sqlx::query_as("SELECT actor_id, outcome, text FROM audit ORDER BY id DESC LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .expect("read the newest audit entry");
    conn.close().await.expect("close");
    (count, last)
}

/// The command as the audit trail records it: control characters as `\u{…}` escapes, capped
/// at 4096 bytes (then `… (N bytes in all)`). Returns the part that must match exactly and,
/// for capped text, the suffix.
fn audited_text(command: &str) -> (String, Option<String>) {
    let escaped: String = command
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    if escaped.len() <= 4096 {
        (escaped, None)
    } else {
        (
            escaped[..4000].to_string(),
            Some(format!("({} bytes in all)", command.len())),
        )
    }
}

/// What `history`, `env` and `envs` show: the user-visible desired state.
fn views(fixture: &Fixture) -> Vec<(String, String)> {
    [
        "history staging --limit 1000",
        "history production --limit 1000",
        "env staging",
        "env production",
        "envs",
        "status staging",
        "deploys staging",
    ]
    .into_iter()
    .map(|c| (c.to_string(), fixture.ok("bob", c)))
    .collect()
}

fn pwned_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list the working folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect()
}

/// Checks one reply against its case; returns the problems found.
fn check_reply(case: &Case, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = run.stdout.lines().collect();
    if run.code != 1 {
        problems.push(format!("exit code {} instead of 1", run.code));
    }
    match lines.first() {
        Some(headline) if !headline.trim().is_empty() && !headline.starts_with(' ') => {}
        other => problems.push(format!("no reason headline (first line {other:?})")),
    }
    let tries: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("Try: "))
        .collect();
    match (&case.try_is, tries.as_slice()) {
        (_, []) => problems.push("no `Try:` line".into()),
        (Some(expected), [actual, ..]) if actual != expected => problems.push(format!(
            "`Try:` suggests `{actual}` instead of `{expected}`"
        )),
        _ => {}
    }
    if !lines.contains(&"Nothing changed.") {
        problems.push("no `Nothing changed.` line".into());
    }
    for needle in &case.mentions {
        if !run.stdout.contains(needle.as_str()) {
            problems.push(format!("the reply does not mention `{needle}`"));
        }
    }
    if run.stderr.contains("panicked") {
        problems.push("ferry panicked".into());
    }
    problems
}

#[test]
fn bad_input_changes_nothing_and_says_so() {
    let fixture = Fixture::sqlite();
    let db = fixture.db_file();
    let rt = common::runtime();
    // Some state to protect: a write on staging, applied by a deploy, and a lock on production.
    fixture.ok("alice", "env staging.ms-users.version 3.5.7 -- hotfix");
    fixture.ok("bob", "converge staging");
    fixture.ok("bob", "lock production release freeze");
    let rows_before = rt.block_on(dump_desired_state(&db));
    assert!(
        rows_before.contains("## revisions (3 rows)"),
        "{rows_before}"
    );
    assert!(rows_before.contains("## locks (1 rows)"), "{rows_before}");
    let views_before = views(&fixture);

    let mut failures = Vec::new();
    for case in cases() {
        let shown: String = case
            .command
            .chars()
            .take(80)
            .collect::<String>()
            .escape_debug()
            .to_string();
        let (audits_before, _) = rt.block_on(last_audit(&db));
        let run = fixture.run(case.user, &case.command);
        let mut problems = check_reply(&case, &run);

        // Audited exactly once, with the outcome, the user and the text as typed.
        let (audits_after, (actor, outcome, text)) = rt.block_on(last_audit(&db));
        if audits_after != audits_before + 1 {
            problems.push(format!(
                "{} audit entries were added instead of 1",
                audits_after - audits_before
            ));
        }
        if (actor.as_str(), outcome.as_str()) != (case.user, case.outcome) {
            problems.push(format!(
                "audited as ({actor}, {outcome}) instead of ({}, {})",
                case.user, case.outcome
            ));
        }
        let (exact, suffix) = audited_text(&case.command);
        match &suffix {
            None if text != exact => problems.push(format!("audited text is {text:?}")),
            Some(suffix) if !text.starts_with(&exact) || !text.ends_with(suffix.as_str()) => {
                problems.push(format!(
                    "audited text (capped) is {:?}…",
                    text.chars().take(80).collect::<String>()
                ))
            }
            _ => {}
        }
        // …and `audit --limit 1` shows it (it lists what came before itself).
        let audit = fixture.ok("bob", "audit --limit 1");
        let row = table_rows(&audit).into_iter().next().unwrap_or_default();
        if !row.contains(&case.outcome.to_string())
            || !row.contains(&format!("(shell:{})", case.user))
        {
            problems.push(format!("`audit --limit 1` does not show it:\n{audit}"));
        }

        // Nothing ran in a shell, and the desired state is untouched.
        let pwned = pwned_files(fixture.path());
        if !pwned.is_empty() {
            problems.push(format!("files appeared: {pwned:?}"));
        }
        let rows_after = rt.block_on(dump_desired_state(&db));
        if rows_after != rows_before {
            problems.push(format!(
                "the store's desired state changed:\n--- before\n{rows_before}--- after\n{rows_after}"
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "\"{shown}\" (as {}):\n  - {}\n  reply:\n{}",
                case.user,
                problems.join("\n  - "),
                run.stdout
                    .lines()
                    .map(|l| format!(
                        "    | {}",
                        l.chars().take(160).collect::<String>().escape_debug()
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }

    let views_after = views(&fixture);
    for ((command, before), (_, after)) in views_before.iter().zip(&views_after) {
        assert_eq!(
            before, after,
            "`{command}` shows something else after the bad input"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad commands were mishandled:\n\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n\n")
    );
}

/// A small deterministic generator (SplitMix64), so that a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const HOSTILE_CHARS: &[char] = &[
    'a', 'z', 'A', 'Z', '0', '9', '.', '-', '_', ' ', ' ', ' ', '"', '\'', '`', '$', '(', ')', ';',
    '|', '&', '<', '>', '\\', '*', '?', '~', '#', '%', '{', '}', '[', ']', '=', '@', '!', ':', ',',
    '\0', '\x07', '\x08', '\t', '\x0b', '\x0c', '\r', '\x1b', '\x7f', '\u{85}', '\u{9b}', 'é', 'ß',
    '中', '🚀', '\u{202e}', '\u{200b}', '\u{feff}', '\u{2028}', '\u{3000}', '\u{fffd}',
];

const WORDS: &[&str] = &[
    "env",
    "unset",
    "envs",
    "history",
    "diff",
    "promote",
    "lock",
    "unlock",
    "audit",
    "whoami",
    "help",
    "converge",
    "rollback",
    "plan",
    "status",
    "approve",
    "staging",
    "production",
    "nosuchenv",
    "staging.ms-users",
    "staging.ms-users.version",
    "staging.ms-users.config.LOG_LEVEL",
    "production.ms-billing.version",
    "staging.ms-userz.version",
    "Staging!!.x",
    "..",
    ".",
    "ms-users",
    "3.5.7",
    "$(touch pwned)",
    "`touch pwned`",
    "1.2.1;touch pwned",
    "--limit",
    "--limit=5",
    "0",
    "-1",
    "1000000",
    "--for",
    "2h",
    "--new",
    "--force",
    "--user",
    "--",
    "-",
    "\"",
    "'",
    "\"quoted value\"",
    "'it''s'",
    "@1",
    "staging@1",
    "%s%n%x",
    "{env}",
    "\\",
    "NaN",
];

const PREFIXES: &[&str] = &[
    "", "", "", "ferry ", "@ferry ", "Ferry: ", "!", "! ", "ferry, ",
];

fn random_line(rng: &mut Rng) -> String {
    let prefix = *rng.pick(PREFIXES);
    let body = match rng.below(10) {
        // Structured: words of the command language in random order.
        0..=4 => {
            let n = 1 + rng.below(5);
            (0..n)
                .map(|_| *rng.pick(WORDS))
                .collect::<Vec<_>>()
                .join(" ")
        }
        // A command word then random characters.
        5 | 6 => {
            let n = rng.below(40);
            let tail: String = (0..n).map(|_| *rng.pick(HOSTILE_CHARS)).collect();
            format!("{} {tail}", rng.pick(WORDS))
        }
        // Pure noise.
        7 | 8 => {
            let n = rng.below(60);
            (0..n).map(|_| *rng.pick(HOSTILE_CHARS)).collect()
        }
        // Huge.
        _ => {
            let n = [4096, 4097, MAX_LINE_BYTES - 20, MAX_LINE_BYTES + 1, 20_000][rng.below(5)];
            format!("env staging.ms-users.config.BIG {}", "x".repeat(n))
        }
    };
    format!("{prefix}{body}")
}

/// The command the shell will run for `line`, `None` for a line it skips.
fn command_of(line: &str) -> Option<&str> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let command = shell_command(line, "ferry", &["!".to_string()]);
    (!command.is_empty()).then_some(command)
}

#[test]
fn a_shell_session_answers_every_hostile_line() {
    let fixture = Fixture::sqlite();
    fixture.ok("alice", "envs");
    let marker = fixture.ok("alice", "version");
    let marker_lines: Vec<&str> = marker.lines().collect();
    assert!(!marker_lines.is_empty());

    // ~200 lines, never one that ends the session or answers like the marker.
    let mut rng = Rng(0x5EED_F0F0_1234_5678);
    let mut lines = Vec::new();
    while lines.len() < 200 {
        let line = random_line(&mut rng);
        let command = command_of(&line);
        let ends_session = matches!(command, Some("exit" | "quit"));
        let is_marker = command.is_some_and(|c| parse(c).is_ok_and(|c| c.name() == "version"));
        if !ends_session && !is_marker {
            lines.push(line);
        }
    }
    // A few fixed ones that must be skipped rather than answered.
    lines.extend(["".into(), "   ".into(), "ferry".into(), "!".into()]);

    // Each line is followed by `version`, so that the replies can be told apart.
    let mut input = String::new();
    for line in &lines {
        input.push_str(line);
        input.push('\n');
        input.push_str("version\n");
    }
    let (audits_before, _) = common::runtime().block_on(last_audit(&fixture.db_file()));
    let run = fixture.shell("bob", input.as_bytes());
    assert_eq!(run.code, 0, "the shell session failed:\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    // Split the transcript at the markers: one segment per hostile line.
    let out: Vec<&str> = run.stdout.lines().collect();
    let mut segments: Vec<Vec<&str>> = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() {
        if out[i..].starts_with(&marker_lines) {
            segments.push(Vec::new());
            i += marker_lines.len();
        } else {
            segments.last_mut().unwrap().push(out[i]);
            i += 1;
        }
    }
    assert_eq!(
        segments.pop(),
        Some(Vec::new()),
        "output after the last marker"
    );
    assert_eq!(
        segments.len(),
        lines.len(),
        "one `version` reply per line sent"
    );

    let mut answered = 0;
    for (line, reply) in lines.iter().zip(&segments) {
        let shown: String = line.chars().take(80).collect();
        match command_of(line) {
            None => assert!(reply.is_empty(), "{shown:?} was answered: {reply:?}"),
            Some(command) => {
                answered += 1;
                let headline = reply.first().copied().unwrap_or_default();
                assert!(
                    !headline.trim().is_empty() && !headline.starts_with(' '),
                    "{shown:?} got no headline: {reply:?}"
                );
                if command.len() > MAX_LINE_BYTES {
                    assert!(headline.contains("limit"), "{shown:?}: {headline}");
                } else if command.chars().any(char::is_control) {
                    assert!(
                        headline.contains("control character"),
                        "{shown:?}: {headline}"
                    );
                }
                if parse(command).is_err() {
                    assert!(
                        reply.contains(&"Nothing changed."),
                        "{shown:?} failed to parse but the reply does not say nothing changed: {reply:?}"
                    );
                }
            }
        }
    }
    assert!(answered >= 150, "only {answered} lines were commands");

    // Every command run (the hostile ones and the markers) was audited.
    let (audits_after, _) = common::runtime().block_on(last_audit(&fixture.db_file()));
    assert_eq!(
        audits_after - audits_before,
        (answered + lines.len()) as i64
    );
    assert!(pwned_files(fixture.path()).is_empty());
}

#[test]
fn a_line_that_is_not_utf8_is_answered_and_the_session_goes_on() {
    let fixture = Fixture::sqlite();
    let mut input = b"envs\n".to_vec();
    input.extend_from_slice(b"env staging.ms-users.version \xff\xfe\n");
    input.extend_from_slice(b"whoami\n");
    let run = fixture.shell("bob", &input);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.starts_with("2 environments"), "{run}");
    assert!(
        run.stdout.contains("You are bob (shell:bob)"),
        "the line after the bad one was not answered:\n{run}"
    );
    assert!(run.stdout.contains("Nothing changed."), "{run}");
}
