//! `ferry serve`: every configured transport (Slack, Discord) plus the HTTP listener, over one
//! shared store, until SIGINT or SIGTERM. Tokens come from the environment variables the
//! config names; a missing one is a configuration error named at start-up.

use crate::app::{App, StartError};
use crate::chat::{Transport, TransportError};
use crate::config::Config;
use std::sync::Arc;
use std::time::Duration;

/// Why `serve` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config cannot be served: exit code 2.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Start(#[from] StartError),
    /// A transport or the listener failed: exit code 1.
    #[error("{0}")]
    Failed(String),
}

/// How long a redelivered chat event is still recognised.
const EVENT_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// Runs until a signal, or until a transport fails for good.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let transports = transports(&config).await?;
    if transports.is_empty() && config.http.is_none() {
        return Err(ServeError::Config(format!(
            "{} configures nothing to serve: add a [slack], [discord] or [http] table",
            config.label()
        )));
    }
    let listen = config.http.as_ref().map(|h| h.listen.clone());
    let app = Arc::new(App::start(config).await?);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let live: crate::http::Transports =
        Arc::new(transports.iter().map(|t| (t.name(), t.live())).collect());
    for transport in transports {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            let name = transport.name();
            transport
                .run(app, shutdown)
                .await
                .map_err(|e| format!("{name}: {e}"))
        });
    }
    if let Some(listen) = listen {
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
            ServeError::Config(format!(
                "[http] listen = \"{listen}\": cannot listen there: {e}"
            ))
        })?;
        tracing::info!(%listen, "http: listening");
        let mut shutdown = shutdown.clone();
        let router = crate::http::router(app.clone(), live.clone());
        tasks.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { crate::chat::stopped(&mut shutdown).await })
                .await
                .map_err(|e| format!("http: {e}"))
        });
    }
    let janitor = tokio::spawn(forget_old_events(app.clone()));
    let outcome = tokio::select! {
        () = signal() => Ok(()),
        Some(done) = tasks.join_next() => match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServeError::Failed(e)),
            Err(e) => Err(ServeError::Failed(e.to_string())),
        },
    };
    let _ = stop.send(true);
    janitor.abort();
    while tokio::time::timeout(Duration::from_secs(10), tasks.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    outcome
}

/// The transports `config` turns on, with their credentials checked.
#[cfg_attr(
    not(all(feature = "slack", feature = "discord")),
    allow(unused_mut, unused_variables)
)]
async fn transports(config: &Config) -> Result<Vec<Box<dyn Transport>>, ServeError> {
    let mut out: Vec<Box<dyn Transport>> = Vec::new();
    let setup = |e: TransportError| match e {
        TransportError::MissingSecret(_) => ServeError::Config(e.to_string()),
        other => ServeError::Failed(other.to_string()),
    };
    if let Some(slack) = &config.slack {
        #[cfg(feature = "slack")]
        out.push(Box::new(
            crate::chat::slack::SlackTransport::connect(slack)
                .await
                .map_err(setup)?,
        ));
        #[cfg(not(feature = "slack"))]
        return Err(ServeError::Config(format!(
            "[slack] is configured ({}) but this ferry was built without the `slack` feature",
            slack.bot_token_env
        )));
    }
    if let Some(discord) = &config.discord {
        #[cfg(feature = "discord")]
        out.push(Box::new(
            crate::chat::discord::DiscordTransport::from_config(discord).map_err(setup)?,
        ));
        #[cfg(not(feature = "discord"))]
        return Err(ServeError::Config(format!(
            "[discord] is configured ({}) but this ferry was built without the `discord` feature",
            discord.token_env
        )));
    }
    Ok(out)
}

async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn forget_old_events(app: Arc<App>) {
    loop {
        let before = app.clock.now() - EVENT_MEMORY.as_millis() as i64;
        if let Err(e) = app.store.forget_events(before).await {
            tracing::warn!(error = %e, "could not forget old chat events");
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
