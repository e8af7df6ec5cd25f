//! The HTTP listener of `ferry serve` (`[http] listen`): liveness, readiness (the store
//! answers and every configured chat transport is connected) and Prometheus metrics, for load
//! balancers, Kubernetes probes and dashboards.

use crate::app::App;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Each configured transport's name and whether it is connected now.
pub type Transports = Arc<Vec<(&'static str, Arc<AtomicBool>)>>;

/// The routes, over a shared `App` and the transports `serve` runs.
pub fn router(app: Arc<App>, transports: Transports) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move |state: State<Arc<App>>| ready(state, transports.clone())),
        )
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// 200 when the store answers and every configured transport is connected, 503 otherwise,
/// naming what is not: a replica whose chat token was refused or whose connection dropped
/// takes no traffic it cannot answer.
async fn ready(State(app): State<Arc<App>>, transports: Transports) -> (StatusCode, String) {
    let down: Vec<&str> = transports
        .iter()
        .filter(|(_, live)| !live.load(Ordering::SeqCst))
        .map(|(name, _)| *name)
        .collect();
    if !down.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: not connected to {}\n", down.join(", ")),
        );
    }
    let Some(env) = app.config.environments.keys().next() else {
        return (StatusCode::OK, "ready (no environments)\n".to_string());
    };
    match app.store.head(env).await {
        Ok(_) => (StatusCode::OK, "ready\n".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

/// Per environment: head revision, whether a deploy runs, and the last deploy's outcome; the
/// chat counters.
async fn metrics(State(app): State<Arc<App>>) -> (StatusCode, String) {
    let mut out = String::from(
        "# HELP ferry_revision Head revision of an environment's desired state.\n# TYPE ferry_revision gauge\n",
    );
    let mut deploying = String::from(
        "# HELP ferry_deploy_running Whether a deploy of the environment is running.\n# TYPE ferry_deploy_running gauge\n",
    );
    for env in app.config.environments.keys() {
        let head = match app.store.head(env).await {
            Ok(head) => head.map_or(0, |h| h.meta.number),
            Err(e) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("store unavailable: {e}\n"),
                );
            }
        };
        out.push_str(&format!("ferry_revision{{env=\"{env}\"}} {head}\n"));
        let running = app.store.running_deploy(env).await.ok().flatten().is_some();
        deploying.push_str(&format!(
            "ferry_deploy_running{{env=\"{env}\"}} {}\n",
            u8::from(running)
        ));
    }
    out.push_str(&deploying);
    out.push_str(&chat_counters());
    out.push_str(&format!(
        "# TYPE ferry_build_info gauge\nferry_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    (StatusCode::OK, out)
}

/// Chat replies given up on, and chat calls retried after a rate limit, since start.
fn chat_counters() -> String {
    use crate::chat::conversation::{replies_dropped, replies_retried};
    format!(
        "# HELP ferry_chat_replies_dropped_total Chat reply messages given up on after the platform's retries.\n\
         # TYPE ferry_chat_replies_dropped_total counter\n\
         ferry_chat_replies_dropped_total {}\n\
         # HELP ferry_chat_replies_retried_total Chat calls tried again after the platform rate-limited them.\n\
         # TYPE ferry_chat_replies_retried_total counter\n\
         ferry_chat_replies_retried_total {}\n",
        replies_dropped(),
        replies_retried()
    )
}

#[cfg(test)]
mod tests {
    use super::chat_counters;

    #[test]
    fn metrics_count_dropped_and_retried_chat_replies() {
        let text = chat_counters();
        for name in [
            "ferry_chat_replies_dropped_total",
            "ferry_chat_replies_retried_total",
        ] {
            assert!(text.contains(&format!("# TYPE {name} counter\n")), "{text}");
            assert!(text.contains(&format!("# HELP {name} ")), "{text}");
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} sample in {text}"));
            value.parse::<u64>().expect("a count");
        }
    }
}
