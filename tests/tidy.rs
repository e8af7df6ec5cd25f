//! Keeps the layering of ARCHITECTURE.md true by itself: each module's files may not name the
//! crates or modules it must not know. A failure names the file, the line and the rule.

use std::path::{Path, PathBuf};

/// (module folder, forbidden words, why).
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "src/domain",
        &[
            "tokio",
            "sqlx",
            "reqwest",
            "std::fs",
            "std::net",
            "std::process",
            "std::io",
            "crate::store",
            "crate::chat",
            "crate::deploy",
            "crate::engine",
            "crate::command",
            "crate::process",
            "slack_morphism",
            "serenity",
            "kube",
        ],
        "the domain is pure: no I/O and no other layer",
    ),
    (
        "src/process",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "crate::engine",
            "crate::deploy",
            "crate::store",
            "crate::config",
            "crate::policy",
            "sqlx",
            "reqwest",
        ],
        "running a program knows only the domain: deployers, checks and commands build on it",
    ),
    (
        "src/command",
        &["slack_morphism", "serenity", "crate::chat", "sqlx"],
        "commands know no chat platform and no SQL",
    ),
    (
        "src/engine",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "sqlx",
        ],
        "the engine knows no chat platform, no commands and no SQL",
    ),
    (
        "src/deploy",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "crate::store",
            "crate::engine",
            "sqlx",
        ],
        "deployers know no chat, no commands and no store",
    ),
    (
        "src/store",
        &[
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::command",
            "crate::deploy",
            "crate::engine",
        ],
        "the store knows no chat platform and no deployers",
    ),
    (
        "src/policy",
        &[
            "tokio",
            "sqlx",
            "slack_morphism",
            "serenity",
            "crate::chat",
            "crate::store",
        ],
        "policy knows no platform wire formats and no I/O",
    ),
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn modules_do_not_reach_across_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for (folder, forbidden, why) in RULES {
        let files = rust_files(&root.join(folder));
        assert!(
            !files.is_empty(),
            "{folder} has no Rust files: is the rule stale?"
        );
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for word in *forbidden {
                    let hit = code.match_indices(word).any(|(i, _)| {
                        let before = code[..i].chars().next_back();
                        let after = code[i + word.len()..].chars().next();
                        let boundary =
                            |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                        boundary(before) && boundary(after)
                    });
                    if hit {
                        violations.push(format!(
                            "{}:{}: uses `{word}`: {why}",
                            file.strip_prefix(root).unwrap().display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing: Vec<String> = rust_files(&root.join("src"))
        .into_iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line at the top: {missing:?}"
    );
}
