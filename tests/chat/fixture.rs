//! A ferry configuration for the chat transport tests: a temp folder with `ferry.toml`, seeds
//! and a deploy script slow enough that a converge shows progress edits. Shared by
//! the chat tests (`tests/transcripts.rs`, `tests/slack.rs`, `tests/discord.rs`) and
//! `benches/slack.rs` through `#[path]`.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

/// Services seeded into staging; enough that `env staging` needs more than one chat message
/// when `many` is set.
pub fn write(dir: &Path, transport_table: &str, alert_channel: &str, users: &str, many: bool) {
    let config = format!(
        r#"
[store]
url = "sqlite://ferry.db"
seed = "environments"

{transport_table}

[deployers.local]
kind = "command"
program = "deploy.sh"
args = ["{{service}}", "{{version}}"]
timeout = "30s"

[environments.staging]
deployer = "local"
concurrency = 1
alert_channel = "{alert_channel}"

[roles]
viewer = ["read"]
deployer = ["read", "write:staging", "converge:staging"]
releaser = ["read", "write:*", "converge:*", "approve:*"]

[users]
{users}
default = ["viewer"]
"#
    );
    std::fs::write(dir.join("ferry.toml"), config).unwrap();
    std::fs::create_dir_all(dir.join("environments")).unwrap();
    let mut seed = String::new();
    let count = if many { 80 } else { 3 };
    for i in 0..count {
        seed.push_str(&format!(
            "[services.svc-{i:02}]\nversion = \"1.0.{i}\"\nimage = \"registry.example.com/team/svc-{i:02}\"\n"
        ));
    }
    std::fs::write(dir.join("environments/staging.toml"), seed).unwrap();
    let script = "#!/bin/sh\nsleep 0.8\ncase \"$2\" in *broken*) echo \"release $2 of $1 crashed on start\" >&2; exit 3;; esac\necho \"$1 $2\" >> deploy.log\necho \"deployed $1 $2\"\n";
    std::fs::write(dir.join("deploy.sh"), script).unwrap();
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(dir.join("deploy.sh"))
        .status()
        .unwrap();
}

/// Starts ferry (config, store, seeds) from `dir`.
pub async fn app(dir: &Path) -> Arc<ferry::app::App> {
    let config = ferry::config::Config::load(&dir.join("ferry.toml")).unwrap();
    Arc::new(ferry::app::App::start(config).await.unwrap())
}

/// The head revision number of `env`.
pub async fn head(app: &ferry::app::App, env: &str) -> u64 {
    let env = ferry::domain::Name::parse(env).unwrap();
    app.store
        .head(&env)
        .await
        .unwrap()
        .map_or(0, |r| r.meta.number)
}

/// Adds a production environment that needs one approval and accepts commands only in
/// `channel` (`slack:#deploys`), seeded like staging.
pub fn add_protected_production(dir: &Path, channel: &str) {
    let mut config = std::fs::read_to_string(dir.join("ferry.toml")).unwrap();
    config.push_str(&format!(
        "\n[environments.production]\ndeployer = \"local\"\nprotected = true\napprovals = 1\nchannels = [\"{channel}\"]\n"
    ));
    std::fs::write(dir.join("ferry.toml"), config).unwrap();
    std::fs::copy(
        dir.join("environments/staging.toml"),
        dir.join("environments/production.toml"),
    )
    .unwrap();
}

/// The value of `service.key` in the head revision of `env`, as stored.
pub async fn value(app: &ferry::app::App, env: &str, service: &str, key: &str) -> Option<String> {
    let env = ferry::domain::Name::parse(env).unwrap();
    let revision = app.store.head(&env).await.unwrap()?;
    let service = ferry::domain::Name::parse(service).unwrap();
    let key = ferry::domain::KeyPath::parse(key).unwrap();
    revision.document.get(&service, &key).map(str::to_string)
}
