//! The `laminar` server: configuration, start-up, the pgwire front end, the REST API and
//! shutdown. `main.rs` only parses flags and calls [`start`]; tests start servers in-process
//! on ephemeral ports the same way.

pub mod config;
pub mod pg;
pub mod rest;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use catalog::Catalog;
use connectors::Registry;
use engine::Engine;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// A running server.
pub struct Server {
    pub pg_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub engine: Arc<Engine>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

/// Open the catalog, resume pipelines and start listening.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let catalog = Catalog::open(&config.data_dir)
        .await
        .with_context(|| format!("cannot open the catalog in {}", config.data_dir.display()))?;
    engine::session::set_default_parallelism(config.parallelism);
    let engine = Arc::new(Engine::new(catalog, Registry::builtin()));
    let pg_listener = TcpListener::bind(config.pg_addr)
        .await
        .with_context(|| format!("cannot listen for Postgres clients on {}", config.pg_addr))?;
    let http_listener = TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("cannot serve the REST API on {}", config.http_addr))?;
    let pg_addr = pg_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    engine
        .restore_pipelines()
        .await
        .context("cannot restore pipelines")?;

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let security = pg::Security {
        tls: config.tls.as_ref().map(tls::pgwire_acceptor).transpose()?,
        users: (!config.users.is_empty()).then(|| Arc::new(pg::auth::Users::new(&config.users))),
    };
    tasks.spawn(pg::serve(
        pg_listener,
        engine.clone(),
        security,
        shutdown.clone(),
    ));
    let app = rest::router(engine.clone(), config.api_token.clone());
    match &config.tls {
        Some(files) => {
            let listener = tls::TlsListener::new(http_listener, files)?;
            tasks.spawn(serve_rest(listener, app, shutdown.clone()));
        }
        None => {
            tasks.spawn(serve_rest(http_listener, app, shutdown.clone()));
        }
    }
    tracing::info!(%pg_addr, %http_addr, data_dir = %config.data_dir.display(), "laminar is ready");
    Ok(Server {
        pg_addr,
        http_addr,
        engine,
        shutdown,
        tasks,
    })
}

/// Serve the REST API on `listener` (plain TCP or TLS) until `shutdown` fires.
async fn serve_rest<L>(listener: L, app: axum::Router, shutdown: CancellationToken)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "REST server failed");
    }
}

impl Server {
    /// Stop accepting clients, stop running jobs (they resume on the next start) and wait.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        self.engine.stop_all_jobs().await;
        while self.tasks.join_next().await.is_some() {}
        tracing::info!("laminar stopped");
    }
}
