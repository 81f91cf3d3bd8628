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

/// Start-up parameters that become session settings (`SHOW application_name`, ...).
const STARTUP_SETTINGS: [(&str, &str); 5] = [
    ("application_name", "application_name"),
    ("client_encoding", "client_encoding"),
    ("DateStyle", "datestyle"),
    ("TimeZone", "timezone"),
    ("user", "session_authorization"),
];

/// The connection's state, created on first use.
pub(crate) fn conn_state<C: ClientInfo>(client: &C) -> Arc<Mutex<ConnState>> {
    let shared: Arc<Arc<Mutex<ConnState>>> = client.session_extensions().get_or_insert_with(|| {
        let mut state = ConnState::default();
        for (parameter, setting) in STARTUP_SETTINGS {
            if let Some(value) = client.metadata().get(parameter) {
                // Start-up values are free text; only Laminar's own settings could
                // refuse one, and none of these is.
                let _ = state.session.set(setting, value);
            }
        }
        Arc::new(Mutex::new(state))
    });
    (*shared).clone()
}
