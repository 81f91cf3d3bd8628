//! Per-connection state: session settings and open cursors.

use std::collections::HashMap;
use std::sync::Arc;

use engine::Session;
use pgwire::api::ClientInfo;
use tokio::sync::Mutex;

use super::cursor::Cursor;

/// What one client connection keeps between statements.
#[derive(Default)]
pub(crate) struct ConnState {
    pub(crate) session: Session,
    pub(crate) cursors: HashMap<String, Cursor>,
}

/// The connection's state, created on first use.
pub(crate) fn conn_state<C: ClientInfo>(client: &C) -> Arc<Mutex<ConnState>> {
    let shared: Arc<Arc<Mutex<ConnState>>> = client
        .session_extensions()
        .get_or_insert_with(|| Arc::new(Mutex::new(ConnState::default())));
    (*shared).clone()
}
