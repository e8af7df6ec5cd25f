//! Properties of the pure command parser `ferry::command::parse`, checked on
//! thousands of arbitrary strings (any Unicode, control characters, quotes) and of structured
//! lines built from command names and random arguments: it never panics; every error has a
//! message; a line with a control character or over the length cap is always an error; and an
//! `env` set command that parses carries a value without control characters and at most 4096
//! bytes long.

use ferry::command::{Env, MAX_LINE_BYTES, parse};
use ferry::domain::MAX_VALUE_BYTES;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

const NAMES: &[&str] = &[
    "env", "unset", "envs", "history", "diff", "promote", "lock", "unlock", "audit", "whoami",
    "help", "version", "ENV", "History", "converge", "rollback", "exit", "",
];

const ARGS: &[&str] = &[
    "staging",
    "production",
    "staging.ms-users",
    "staging.ms-users.version",
    "staging.ms-users.config.LOG_LEVEL",
    "staging.ms-users.a.b.c.d.e",
    "Staging!!.ms-users.version",
    "staging..version",
    ".",
    "3.5.7",
    "1.0.0-rc.1+build.5",
    "$(touch pwned)",
    "`id`",
    "1.2.1;touch pwned",
    "--limit",
    "--limit=0",
    "--limit=1000",
    "--limit=1001",
    "5",
    "-1",
    "--for",
    "2h",
    "0s",
    "--new",
    "--force",
    "--user",
    "--",
    "-",
    "\"",
    "'",
    "\"a b\"",
    "''",
    "@3",
    "staging@2",
    "production@x",
];

/// Characters that stress the lexer: quotes, separators, controls, odd Unicode.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        2 => Just(' '),
        2 => prop::sample::select(vec!['"', '\'', '-', '.', '=', '@', '\\', '`', '$']),
        1 => proptest::char::range('\0', '\x1f'),
        1 => prop::sample::select(vec!['\x7f', '\u{85}', '\u{9b}', '\u{a0}', '\u{2028}', '\u{202e}', '\u{200b}', '\u{feff}', '\u{3000}']),
        1 => any::<char>(),
    ]
}

fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..max).prop_map(|cs| cs.into_iter().collect())
}

/// A command name followed by known arguments, random words and (sometimes) a reason.
fn structured_line() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        3 => prop::sample::select(ARGS).prop_map(str::to_string),
        1 => tricky_string(12),
        1 => "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,3}",
        1 => (1usize..6000).prop_map(|n| "v".repeat(n)),
    ];
    (
        prop::sample::select(NAMES),
        prop::collection::vec(word, 0..6),
        prop::option::of(tricky_string(20)),
    )
        .prop_map(|(name, words, reason)| {
            let mut line = name.to_string();
            for w in words {
                line.push(' ');
                line.push_str(&w);
            }
            if let Some(reason) = reason {
                line.push_str(" -- ");
                line.push_str(&reason);
            }
            line
        })
}

/// ` -- <reason>` or nothing.
fn reason_suffix() -> impl Strategy<Value = String> {
    prop::option::of(tricky_string(20)).prop_map(|r| match r {
        Some(r) => format!(" -- {r}"),
        None => String::new(),
    })
}

/// Lines shaped like real commands, with random names, values, options and reasons, so that
/// many of them parse.
fn templated_line() -> impl Strategy<Value = String> {
    let name = "[a-z][a-z0-9-]{0,10}";
    let key = "[a-zA-Z][a-zA-Z0-9_]{0,6}(\\.[A-Z][A-Z0-9_]{0,6}){0,2}";
    let value = prop_oneof![
        "[A-Za-z0-9][A-Za-z0-9.+_-]{0,20}",
        tricky_string(16).prop_map(|v| format!("\"{}\"", v.replace('"', ""))),
        tricky_string(16),
    ];
    prop_oneof![
        (name, name, key, value, any::<bool>(), reason_suffix()).prop_map(
            |(e, s, k, v, new, r)| {
                let new = if new { " --new" } else { "" };
                format!("env {e}.{s}.{k} {v}{new}{r}")
            }
        ),
        (name, prop::option::of(name), prop::option::of(0u32..1200)).prop_map(|(e, s, l)| {
            let s = s.map(|s| format!(" {s}")).unwrap_or_default();
            let l = l.map(|l| format!(" --limit {l}")).unwrap_or_default();
            format!("history {e}{s}{l}")
        }),
        (name, prop::option::of(name)).prop_map(|(e, s)| {
            format!(
                "unset {e}{}",
                s.map(|s| format!(".{s}")).unwrap_or_default()
            )
        }),
        (
            name,
            tricky_string(20),
            prop::option::of("[0-9]{1,3}[smhd]")
        )
            .prop_map(|(e, r, d)| {
                let d = d.map(|d| format!(" --for {d}")).unwrap_or_default();
                format!("lock {e} {r}{d}")
            }),
        (
            name,
            prop::option::of(name),
            prop::option::of("@?[0-9]{1,3}")
        )
            .prop_map(|(a, b, r)| format!(
                "diff {a} {} {}",
                b.unwrap_or_default(),
                r.unwrap_or_default()
            )),
        (
            name,
            name,
            prop::collection::vec(name, 0..3),
            reason_suffix()
        )
            .prop_map(|(a, b, svcs, r)| format!("promote {a} {b} {}{r}", svcs.join(" "))),
        (
            prop::option::of(name),
            prop::option::of(tricky_string(10)),
            prop::option::of(0u32..1200)
        )
            .prop_map(|(e, u, l)| {
                let mut line = "audit".to_string();
                if let Some(e) = e {
                    line.push_str(&format!(" {e}"));
                }
                if let Some(u) = u {
                    line.push_str(&format!(" --user {u}"));
                }
                if let Some(l) = l {
                    line.push_str(&format!(" --limit={l}"));
                }
                line
            }),
    ]
}

fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        2 => tricky_string(80),
        3 => structured_line(),
        3 => templated_line(),
    ]
}

/// The properties every line must satisfy, whatever it is.
fn check(line: &str) -> Result<(), TestCaseError> {
    let result = parse(line);
    match &result {
        Err(e) => {
            prop_assert!(
                !e.message.trim().is_empty(),
                "empty error message for {line:?}"
            );
            if let Some(t) = &e.try_instead {
                prop_assert!(!t.trim().is_empty(), "empty suggestion for {line:?}");
            }
        }
        Ok(command) => {
            if let Some(env) = command.get::<Env>()
                && let Some(value) = &env.value
            {
                let value = value.as_str();
                prop_assert!(!value.is_empty(), "empty value from {line:?}");
                prop_assert!(
                    !value.chars().any(char::is_control),
                    "control character in the value {value:?} from {line:?}"
                );
                prop_assert!(
                    value.len() <= MAX_VALUE_BYTES,
                    "{}-byte value from a {}-byte line",
                    value.len(),
                    line.len()
                );
                prop_assert!(env.target.key.is_some() && env.target.service.is_some());
            }
        }
    }
    if line.chars().any(char::is_control) {
        prop_assert!(
            result.is_err(),
            "{line:?} has a control character but parsed"
        );
    }
    if line.len() > MAX_LINE_BYTES {
        prop_assert!(result.is_err(), "a {}-byte line parsed", line.len());
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_never_panics_and_errors_explain_themselves(line in any_line()) {
        check(&line)?;
    }

    #[test]
    fn a_control_character_anywhere_is_rejected(
        before in structured_line(),
        control in prop_oneof![proptest::char::range('\0', '\x1f'), proptest::char::range('\x7f', '\u{9f}')],
        after in tricky_string(10),
        at_end in any::<bool>(),
    ) {
        let line = if at_end {
            format!("{before}{after}{control}")
        } else {
            let cut = before.char_indices().map(|(i, _)| i).nth(before.chars().count() / 2).unwrap_or(0);
            format!("{}{control}{}{after}", &before[..cut], &before[cut..])
        };
        let err = parse(&line);
        prop_assert!(err.is_err(), "{line:?} parsed");
        prop_assert!(!err.unwrap_err().message.trim().is_empty());
    }

    #[test]
    fn env_set_values_are_capped_and_clean(
        key in prop_oneof![Just("version"), Just("image"), Just("config.LOG_LEVEL")],
        value in prop_oneof![
            tricky_string(30),
            (4090usize..4100).prop_map(|n| "a".repeat(n)),
            "[A-Za-z0-9.+_-]{1,140}",
        ],
        quoted in any::<bool>(),
    ) {
        let shown = if quoted { format!("\"{value}\"") } else { value.clone() };
        let line = format!("env staging.ms-users.{key} {shown} -- why");
        check(&line)?;
        if let Some(env) = parse(&line).ok().as_ref().and_then(|c| c.get::<Env>()) {
            let parsed = env.value.clone().expect("a set command has a value");
            // The value is (part of) what was typed, never more; exactly it when it needs no
            // quoting or was quoted.
            prop_assert!(value.contains(parsed.as_str()), "{parsed:?} from {line:?}");
            let plain = !value.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'');
            if (plain && !value.starts_with("--")) || (quoted && !value.contains('"')) {
                prop_assert_eq!(parsed.as_str(), value.as_str());
            }
            prop_assert_eq!(env.reason.as_deref(), Some("why"));
            if key == "version" {
                prop_assert!(parsed.as_str().len() <= 128);
            }
        }
    }
}

#[test]
fn the_examples_from_the_design_parse() {
    for line in [
        "env staging.ms-users.version 3.5.7",
        "env staging.ms-users.config.LOG_LEVEL debug",
        "env staging.ms-users.version 3.5.7 -- hotfix",
        "history staging --limit 20",
        "diff staging production",
        "promote staging production ms-users",
        "lock staging database migration --for 2h",
        "audit staging --user alice --limit 5",
    ] {
        assert!(parse(line).is_ok(), "{line}: {:?}", parse(line));
    }
    let parsed = parse("env staging.ms-users.version 3.5.7 -- hotfix");
    let Some(env) = parsed.as_ref().ok().and_then(|c| c.get::<Env>()) else {
        panic!("not an env command");
    };
    assert_eq!(
        env.value.clone().map(|v| v.into_string()),
        Some("3.5.7".into())
    );
    assert_eq!(env.reason.as_deref(), Some("hotfix"));
}
