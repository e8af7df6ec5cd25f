//! The configuration as users meet it: every shipped example parses, `check-config` summarises
//! a good file, and a bad one is reported with its file, line and the nearest valid name, and
//! exit code 2.

use std::path::Path;
use std::process::Command;

fn ferry(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn shipped_config_and_seeds_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let summary = ferry::check::summarise(Some(&root.join("config/ferry.toml"))).unwrap();
    assert!(summary.contains("environments: 2"), "{summary}");
    assert!(summary.contains("staging: deployer demo"), "{summary}");
    assert!(
        summary.contains("seed environments/staging.toml: 2 services"),
        "{summary}"
    );
}

#[test]
fn builtin_default_is_the_shipped_demo() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = ferry(&["check-config"], dir.path());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(built-in config) is valid"), "{text}");
    assert!(
        text.contains("seed (built-in) staging.toml: 2 services"),
        "{text}"
    );
}

fn check(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), config).unwrap();
    ferry(&["check-config", "--config", "ferry.toml"], dir.path())
}

const GOOD: &str = r#"
[deployers.local]
kind = "noop"

[environments.staging]
deployer = "local"
"#;

#[test]
fn a_typo_names_file_line_and_nearest_key() {
    let (code, text) = check(&format!("{GOOD}promte_to = [\"production\"]\n"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ferry.toml:7:"), "{text}");
    assert!(
        text.contains("unknown key `promte_to`: did you mean `promote_to`?"),
        "{text}"
    );
}

#[test]
fn an_unknown_deployer_kind_names_the_nearest() {
    let (code, text) = check("[deployers.local]\nkind = \"comand\"\nprogram = \"x\"\n");
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ferry.toml:") && text.contains("did you mean `command`?"),
        "{text}"
    );
}

#[test]
fn cross_references_are_checked_with_their_line() {
    let (code, text) = check(
        "[deployers.local]\nkind = \"noop\"\n\n[environments.staging]\ndeployer = \"locla\"\n",
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ferry.toml:5:") && text.contains("did you mean `local`?"),
        "{text}"
    );
    let (code, text) = check(&format!(
        "{GOOD}\n[roles]\nviewer = [\"read\"]\n\n[users]\n\"shell:bob\" = [\"veiwer\"]\n"
    ));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("did you mean `viewer`?"), "{text}");
    let (code, text) = check(&format!("{GOOD}\n[roles]\nviewer = [\"deploy:staging\"]\n"));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ferry.toml:9:") && text.contains("not a permission"),
        "{text}"
    );
}

#[test]
fn bad_values_and_syntax_are_reported_with_lines() {
    let (code, text) =
        check("[deployers.local]\nkind = \"command\"\nprogram = \"x\"\ntimeout = \"6x\"\n");
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ferry.toml:4:") && text.contains("not a duration"),
        "{text}"
    );
    let (code, text) = check("[environments.Bad_Name]\ndeployer = \"x\"\n");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a valid name"), "{text}");
    let (code, text) = check("[bot\nname = 1\n");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ferry.toml:1:"), "{text}");
}

#[test]
fn a_bad_seed_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("seeds")).unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        format!("[store]\nseed = \"seeds\"\n{GOOD}"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("seeds/staging.toml"),
        "[services.ms-users]\nversion = \"1.0\"\nlist = [1]\n",
    )
    .unwrap();
    let (code, text) = ferry(&["check-config", "--config", "ferry.toml"], dir.path());
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("seeds/staging.toml") && text.contains("lists are not supported"),
        "{text}"
    );
    let (code, text) = ferry(&["run", "--config", "ferry.toml", "envs"], dir.path());
    assert_eq!(code, 2, "a bad seed stops ferry from starting: {text}");
}

#[test]
fn run_with_a_broken_config_exits_2_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "[store]\nurl = \"sqlite://ferry.db\"\nbogus = 1\n",
    )
    .unwrap();
    let (code, text) = ferry(&["run", "--config", "ferry.toml", "envs"], dir.path());
    assert_eq!(code, 2, "{text}");
    assert!(
        !dir.path().join("ferry.db").exists(),
        "no store is created for a broken config"
    );
}

/// A webhook URL's credentials and query token never appear in the summary: it shows
/// `scheme://host[:port]/path`.
#[test]
fn check_config_shows_webhook_urls_without_credentials_or_query() {
    let (code, text) = check(
        r#"
[deployers.hook]
kind = "webhook"
url = "https://deploy-user:hunter2-pass@hooks.example.com:8443/deploy?token=tok-12345#x"

[environments.staging]
deployer = "hook"
"#,
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("  hook (webhook) → https://hooks.example.com:8443/deploy\n"),
        "{text}"
    );
    for secret in ["hunter2-pass", "deploy-user", "tok-12345", "token="] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
}

/// `{host}` values come from the config; one starting with `-` (a program would read it as an
/// option) and a `pass_env` entry that is not a variable name are refused with file and line.
#[test]
fn hosts_starting_with_a_dash_and_bad_pass_env_names_are_refused() {
    let (code, text) = check(
        r#"
[deployers.ssh]
kind = "command"
program = "deploy.sh"
args = ["{host}"]
hosts = ["web1", "-oProxyCommand=touch pwned"]

[environments.staging]
deployer = "ssh"
"#,
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ferry.toml:")
            && text.contains("host `-oProxyCommand=touch pwned` starts with '-'"),
        "{text}"
    );
    let (code, text) = check(
        r#"
[deployers.ssh]
kind = "command"
program = "deploy.sh"
pass_env = ["AWS PROFILE"]

[environments.staging]
deployer = "ssh"
"#,
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("pass_env: `AWS PROFILE` is not an environment variable name"),
        "{text}"
    );
}

#[test]
fn a_discord_channel_bound_by_name_alone_is_refused_with_what_to_write() {
    let (code, text) = check(&format!(
        "{GOOD}channels = [\"slack:#deploys\", \"discord:#deploys\"]\n"
    ));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ferry.toml:7")
            && text.contains("environment staging: channel `discord:#deploys` does not say which server's channel it means")
            && text.contains("`discord:123456789012345678`")
            && text.contains("`discord:<server id>/#deploys`"),
        "{text}"
    );
    for good in [
        "discord:123456789012345678",
        "discord:800000000000000001/#deploys",
    ] {
        let (code, text) = check(&format!("{GOOD}channels = [\"{good}\"]\n"));
        assert_eq!(code, 0, "{good}: {text}");
    }
}
