//! Which config a started ferry uses, with the real binary: `--config`, then `$FERRY_CONFIG`,
//! then `./config/ferry.toml`, then the built-in demo; a file lying in the working directory
//! never wins over what the operator named, ferry says which file it used, and the built-in
//! demo never loads user-defined commands (programs) from wherever it was started. Also: two
//! keys that deploy programs would receive as one `FERRY_KEY_*` variable are refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

fn config(env: &str) -> String {
    format!(
        r#"[store]
url = "sqlite://ferry.db"

[deployers.none]
kind = "noop"

[environments.{env}]
deployer = "none"

[roles]
admin = ["*"]

[users]
default = ["admin"]
"#
    )
}

fn ferry(dir: &Path, args: &[&str], config_env: Option<&Path>, input: Option<&str>) -> Output {
    let mut cmd = Command::new(FERRY);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_LOG")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = config_env {
        cmd.env("FERRY_CONFIG", path);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = input {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_named_config_wins_over_one_in_the_working_directory_and_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/ferry.toml"), config("local")).unwrap();
    let named = dir.path().join("named.toml");
    std::fs::write(&named, config("named")).unwrap();
    let explicit = dir.path().join("explicit.toml");
    std::fs::write(&explicit, config("explicit")).unwrap();

    let out = ferry(dir.path(), &["run", "envs"], Some(&named), None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("named"), "{}", text(&out.stdout));
    assert!(
        !text(&out.stdout).contains("local"),
        "{}",
        text(&out.stdout)
    );

    let out = ferry(
        dir.path(),
        &["run", "--config", explicit.to_str().unwrap(), "envs"],
        Some(&named),
        None,
    );
    assert!(
        text(&out.stdout).contains("explicit"),
        "{}",
        text(&out.stdout)
    );

    let out = ferry(dir.path(), &["shell"], Some(&named), Some("envs\n"));
    assert!(
        text(&out.stderr).contains(&format!("ferry: using {}", named.display())),
        "{}",
        text(&out.stderr)
    );
    let out = ferry(dir.path(), &["shell"], None, Some("envs\n"));
    assert!(
        text(&out.stderr).contains(&format!(
            "ferry: using {}",
            dir.path().join("config/ferry.toml").display()
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("local"), "{}", text(&out.stdout));
}

#[test]
fn the_built_in_demo_loads_no_commands_from_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("commands")).unwrap();
    std::fs::write(
        dir.path().join("commands/evil.toml"),
        "pattern = \"evil\"\nhelp = \"x\"\npermission = \"read\"\nprogram = \"/usr/bin/touch\"\nargs = [\"pwned\"]\ntimeout = \"5s\"\n",
    )
    .unwrap();
    let out = ferry(dir.path(), &["shell"], None, Some("evil\n"));
    assert!(
        text(&out.stderr).contains("ferry: using the built-in demo config"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("unknown command"),
        "{}",
        text(&out.stdout)
    );
    assert!(!dir.path().join("pwned").exists(), "the program ran");
}

/// The demo's deployers name scripts relative to its folder; without a file that folder would
/// be wherever ferry was started, so the built-in demo deploys through `noop` instead.
#[test]
fn the_built_in_demo_runs_no_scripts_from_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    for script in ["deploy.sh", "verify.sh", "observe.sh"] {
        let path = dir.path().join("scripts").join(script);
        std::fs::write(&path, "#!/bin/sh\necho \"$0 $*\" >> PWNED\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = ferry(
        dir.path(),
        &["shell", "--user", "alice"],
        None,
        Some("status staging\nconverge staging\n"),
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("deployed (deploy #1)"), "{stdout}");
    assert!(
        !dir.path().join("PWNED").exists(),
        "a script of the working directory ran"
    );
}

#[test]
fn keys_that_would_be_one_program_variable_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ferry.toml"), config("staging")).unwrap();
    let cfg = dir.path().join("ferry.toml");
    let run = |command: &str| {
        ferry(
            dir.path(),
            &["run", "--config", cfg.to_str().unwrap(), command],
            None,
            None,
        )
    };
    assert!(
        run("env staging.web.config.MODE fast --new")
            .status
            .success()
    );
    for clash in [
        "env staging.web.config.mode slow",
        "env staging.web.CONFIG.MODE slow",
    ] {
        let out = run(clash);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(
            stdout.contains("already has `config.MODE`")
                && stdout.contains("FERRY_KEY_CONFIG_MODE")
                && stdout.contains("env staging.web.config.MODE slow")
                && stdout.contains("Nothing changed."),
            "{stdout}"
        );
    }
    let shown = text(&run("env staging.web").stdout);
    assert!(shown.contains("fast") && !shown.contains("slow"), "{shown}");
}
