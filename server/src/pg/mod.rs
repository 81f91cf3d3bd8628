//! The Postgres wire front end.
//!
//! Built on pgwire's handler traits, with Laminar's own simple-query loop: results of
//! continuous queries are written to the socket batch by batch (flushed after each), and a
//! client's CancelRequest stops the whole stream, not just the planning step.

pub mod auth;
mod conn;
mod copy;
mod cursor;
mod encode;
mod error;
mod handler;
mod params;

use std::sync::Arc;

use engine::Engine;
use pgwire::api::ConnectionManager;
use pgwire::tokio::{TlsAcceptor, process_socket};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use handler::Handlers;

/// How pgwire clients connect: TLS (on SSLRequest) and password logins, when configured.
#[derive(Default)]
pub struct Security {
    pub tls: Option<TlsAcceptor>,
    pub users: Option<Arc<auth::Users>>,
}

/// Accept pgwire connections until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    security: Security,
    shutdown: CancellationToken,
) {
    let manager = Arc::new(ConnectionManager::new());
    let handlers = Arc::new(Handlers::new(engine, manager, security.users));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let handlers = handlers.clone();
                    let tls = security.tls.clone();
                    connections.spawn(async move {
                        if let Err(e) = process_socket(socket, tls, handlers).await {
                            tracing::debug!(%peer, error = %e, "pgwire connection ended with an error");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "pgwire accept failed"),
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}
