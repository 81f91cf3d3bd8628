//! Logging in: trust on loopback-only servers, SCRAM-SHA-256 when users are configured.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password, random_nonce};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, METADATA_USER,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::config::User;

/// PBKDF2 rounds of stored passwords (PostgreSQL's default).
const SCRAM_ITERATIONS: usize = 4096;

/// Users who may log in, with their salted passwords (computed once at start-up).
#[derive(Debug)]
pub struct Users {
    salted: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Users {
    pub fn new(users: &[User]) -> Self {
        let salted = users
            .iter()
            .map(|user| {
                let salt = random_nonce().into_bytes();
                let hashed = gen_salted_password(&user.password, &salt, SCRAM_ITERATIONS);
                (user.name.clone(), (salt, hashed))
            })
            .collect();
        Users { salted }
    }
}

// The trait's own signature elides LoginInfo's lifetime; naming it breaks the match.
#[allow(elided_lifetimes_in_paths)]
#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or_default();
        match self.salted.get(name) {
            Some((salt, hashed)) => Ok(Password::new(Some(salt.clone()), hashed.clone())),
            None => Err(PgWireError::InvalidPassword(name.to_string())),
        }
    }
}

/// The parameters every client gets at start-up (psql and drivers read server_version).
pub fn server_parameters() -> Arc<DefaultServerParameterProvider> {
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = engine::exec::introspection::SERVER_VERSION.to_string();
    parameters.scram_iterations = SCRAM_ITERATIONS;
    Arc::new(parameters)
}

/// One connection's start-up: its SASL exchange keeps state, so each gets its own.
pub enum Startup {
    Trust {
        manager: Arc<ConnectionManager>,
        parameters: Arc<DefaultServerParameterProvider>,
        pids: Arc<RandomPidSecretKeyGenerator>,
    },
    Password(SASLAuthStartupHandler<DefaultServerParameterProvider>),
}

impl Startup {
    pub fn new(
        users: Option<&Arc<Users>>,
        manager: Arc<ConnectionManager>,
        parameters: Arc<DefaultServerParameterProvider>,
        pids: Arc<RandomPidSecretKeyGenerator>,
    ) -> Self {
        match users {
            Some(users) => {
                let mut scram = ScramAuth::new(users.clone());
                scram.set_iterations(SCRAM_ITERATIONS);
                // No channel binding: SCRAM-SHA-256-PLUS would be offered on plain
                // connections too, and libpq refuses that.
                Startup::Password(
                    SASLAuthStartupHandler::new(parameters)
                        .with_scram(scram)
                        .with_pid_secret_key_generator(pids)
                        .with_connection_manager(manager),
                )
            }
            None => Startup::Trust {
                manager,
                parameters,
                pids,
            },
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Password(sasl) => match sasl.on_startup(client, message).await {
                Err(PgWireError::InvalidPassword(name)) => {
                    // PostgreSQL's wording, naming the login's user: libpq leaves the SCRAM
                    // user name empty and pgJDBC sends "*".
                    let user = client
                        .metadata()
                        .get(METADATA_USER)
                        .cloned()
                        .unwrap_or(name);
                    let error = ErrorInfo::new(
                        "FATAL".to_string(),
                        "28P01".to_string(),
                        format!("password authentication failed for user \"{user}\""),
                    );
                    // Then the connection ends, as in PostgreSQL: pgwire's own error path
                    // would send ReadyForQuery after the FATAL error, which asyncpg reports
                    // as a protocol violation.
                    client
                        .send(PgWireBackendMessage::ErrorResponse(error.into()))
                        .await?;
                    client.close().await?;
                    Err(PgWireError::IoError(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        format!("login refused for user \"{user}\""),
                    )))
                }
                other => other,
            },
            Startup::Trust {
                manager,
                parameters,
                pids,
            } => {
                if let PgWireFrontendMessage::Startup(startup) = &message {
                    protocol_negotiation(client, startup).await?;
                    save_startup_parameters_to_metadata(client, startup);
                    let (pid, secret_key) = pids.generate(client);
                    client.set_pid_and_secret_key(pid, secret_key.clone());
                    // Registered so a CancelRequest with this pid and key reaches it.
                    let (handle, guard) = manager.register(pid, secret_key);
                    client
                        .session_extensions()
                        .insert::<Arc<ConnectionHandle>>(handle);
                    client.session_extensions().insert::<ConnectionGuard>(guard);
                    finish_authentication(client, parameters.as_ref()).await?;
                }
                Ok(())
            }
        }
    }
}
