//! The running ferry: a validated config, an open store and a clock, wired together. Every
//! transport hands it (who, where, text) and renders the `Reply` it returns.

use crate::clock::{Clock, SystemClock};
use crate::command::custom::CustomCommands;
use crate::command::{Context, Reply, run};
use crate::config::{Config, ConfigError};
use crate::deploy::Deployers;
use crate::domain::{Actor, NewRevision, Origin};
use crate::engine::{Engine, EventSink};
use crate::store::{self, AppendError, Store, StoreError};
use std::sync::Arc;

/// Why ferry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Config, store and clock, shared by every transport.
pub struct App {
    pub config: Config,
    /// The user-defined commands the config names, loaded (and checked) at start.
    pub commands: CustomCommands,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub engine: Engine,
}

impl App {
    /// Opens the store named by `config` (creating and migrating it) and seeds environments
    /// that have no revision yet.
    pub async fn start(config: Config) -> Result<App, StartError> {
        let store = store::open(&config.store.url, &config.base_dir).await?;
        App::with_store(config, store, Arc::new(SystemClock)).await
    }

    /// As `start`, with a given store and clock (tests, benchmarks).
    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<App, StartError> {
        let deployers = Deployers::build(&config.deployers, &config.base_dir)
            .map_err(|e| ConfigError::new(&config.label(), None, e.to_string()))?;
        App::with_parts(config, store, clock, deployers).await
    }

    /// As `with_store`, with given deployers (tests plug in their own).
    pub async fn with_parts(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        deployers: Deployers,
    ) -> Result<App, StartError> {
        let engine = Engine::new(store.clone(), deployers, clock.clone());
        let commands = CustomCommands::for_config(&config)?;
        let app = App {
            commands,
            config,
            store,
            clock,
            engine,
        };
        app.seed().await?;
        Ok(app)
    }

    /// Writes revision 1 of every environment that has none and has a seed file. Racing
    /// processes are fine: only one first revision can win.
    async fn seed(&self) -> Result<(), StartError> {
        for env in self.config.environments.keys() {
            if self.store.head(env).await?.is_some() {
                continue;
            }
            let Some((label, document)) = self.config.seed(env)? else {
                continue;
            };
            let changes = crate::domain::diff(&Default::default(), &document);
            let revision = NewRevision {
                env: env.clone(),
                parent: None,
                author: Actor::ferry(),
                at: self.clock.now(),
                reason: Some(format!("seeded from {label}")),
                command: "seed".to_string(),
                changes,
                document,
            };
            match self.store.append(revision).await {
                Ok(_) | Err(AppendError::Conflict { .. }) => {}
                Err(AppendError::Store(e)) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Runs one command typed by `actor` at `origin`.
    pub async fn handle(&self, actor: &Actor, origin: &Origin, text: &str) -> Reply {
        self.handle_with_events(actor, origin, text, None).await
    }

    /// As `handle`, publishing deploy progress to `events` as it happens.
    pub async fn handle_with_events(
        &self,
        actor: &Actor,
        origin: &Origin,
        text: &str,
        events: Option<&EventSink>,
    ) -> Reply {
        let ctx = Context {
            commands: &self.commands,
            engine: &self.engine,
            events,
            config: &self.config,
            store: self.store.as_ref(),
            clock: self.clock.as_ref(),
            actor,
            origin,
            text: text.trim(),
        };
        run(&ctx).await
    }
}
