//! pgwire handlers: startup, simple and extended query, cancel.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use engine::error::sqlstate;
use engine::sql::parse::{LaminarStatement, parse_sql};
use engine::sqlparser::ast::{CloseCursor, FetchDirection, Set, Statement, Value as SqlValue};
use engine::{Engine, EngineError, Outcome};
use futures::{Sink, SinkExt, StreamExt, stream};
use pgwire::api::auth::DefaultServerParameterProvider;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionHandle, ConnectionManager, PgWireConnectionState,
    PgWireServerHandlers, RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_PORTAL};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use tokio::sync::Mutex;

use super::auth::{Startup, Users, server_parameters};
use super::conn::{ConnState, conn_state};
use super::copy::{CopyOut, copy_out};
use super::cursor::{Cursor, FetchError};
use super::encode::{encode, pg_fields, row_description};
use super::error::{error_info, to_pg};
use super::params::{
    declared_type_name, has_placeholders, oid_parameter_casts, param_pg_type, portal_params,
};
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};

/// Everything pgwire needs, shared by all connections.
pub struct Handlers {
    query: Arc<QueryHandler>,
    cancel: Arc<DefaultCancelHandler>,
    manager: Arc<ConnectionManager>,
    users: Option<Arc<Users>>,
    parameters: Arc<DefaultServerParameterProvider>,
    pids: Arc<RandomPidSecretKeyGenerator>,
}

impl Handlers {
    /// With `users`, clients log in with a password (SCRAM-SHA-256); without, any client
    /// on the (loopback) address is trusted.
    pub fn new(
        engine: Arc<Engine>,
        manager: Arc<ConnectionManager>,
        users: Option<Arc<Users>>,
    ) -> Self {
        Handlers {
            query: Arc::new(QueryHandler {
                parser: Arc::new(LaminarParser {
                    engine: engine.clone(),
                }),
                engine,
            }),
            cancel: Arc::new(DefaultCancelHandler::new(manager.clone())),
            manager,
            users,
            parameters: server_parameters(),
            pids: Arc::default(),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.query.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.query.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(Startup::new(
            self.users.as_ref(),
            self.manager.clone(),
            self.parameters.clone(),
            self.pids.clone(),
        ))
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// Runs statements for pgwire connections.
pub(crate) struct QueryHandler {
    engine: Arc<Engine>,
    parser: Arc<LaminarParser>,
}

/// Resolves when the client sends a CancelRequest for the current statement.
///
/// Cancellation safe: yes.
async fn cancelled(rx: Option<futures::channel::oneshot::Receiver<()>>) {
    if let Some(rx) = rx
        && rx.await.is_ok()
    {
        return;
    }
    // No handle, or the sender was replaced: never fires.
    futures::future::pending::<()>().await
}

async fn cancel_receiver<C: ClientInfo>(
    client: &C,
) -> Option<futures::channel::oneshot::Receiver<()>> {
    let handle = client.session_extensions().get::<Arc<ConnectionHandle>>()?;
    Some(handle.start_query().await)
}

fn complete(tag: impl Into<String>) -> PgWireBackendMessage {
    PgWireBackendMessage::CommandComplete(CommandComplete::new(tag.into()))
}

fn fetch_count(direction: &FetchDirection) -> Result<Option<usize>, EngineError> {
    let number = |v: &SqlValue| match v {
        SqlValue::Number(n, _) => n
            .parse::<usize>()
            .map_err(|_| EngineError::InvalidParameter(format!("invalid FETCH count '{n}'"))),
        other => Err(EngineError::InvalidParameter(format!(
            "invalid FETCH count '{other}'"
        ))),
    };
    match direction {
        FetchDirection::Count { limit } => number(limit).map(Some),
        FetchDirection::Forward { limit: Some(limit) } => number(limit).map(Some),
        FetchDirection::Next | FetchDirection::Forward { limit: None } => Ok(Some(1)),
        FetchDirection::All | FetchDirection::ForwardAll => Ok(None),
        other => Err(EngineError::Unsupported(format!(
            "FETCH {other} is not supported: cursors over streams only move forward"
        ))),
    }
}

/// Cursor names follow identifier rules: unquoted names are case-insensitive.
fn ident_name(ident: &engine::sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

fn cursor_missing(name: &str) -> EngineError {
    EngineError::UnknownCursor(name.to_string())
}

/// Errors of the statement being run, as pgwire errors (SQLSTATE kept).
enum RunError {
    Engine(EngineError),
    Wire(PgWireError),
}

impl From<EngineError> for RunError {
    fn from(e: EngineError) -> Self {
        RunError::Engine(e)
    }
}

impl From<PgWireError> for RunError {
    fn from(e: PgWireError) -> Self {
        RunError::Wire(e)
    }
}

impl From<FetchError> for RunError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Wire(w) => RunError::Wire(w),
            FetchError::Engine(e) => RunError::Engine(e),
        }
    }
}

/// The rows a `FETCH` takes from its cursor, encoded as `format` asks (the simple protocol
/// and psql want text; a driver's FETCH over the extended protocol may want binary).
async fn fetch_rows(
    conn: &mut ConnState,
    fetch: &Statement,
    timeout: Option<std::time::Duration>,
    format: &Format,
) -> Result<(Arc<Vec<FieldInfo>>, Vec<pgwire::messages::data::DataRow>), RunError> {
    let Statement::Fetch {
        name, direction, ..
    } = fetch
    else {
        return Err(EngineError::Syntax("expected FETCH".into()).into());
    };
    let count = fetch_count(direction)?;
    let name = ident_name(name);
    let cursor = conn
        .cursors
        .get_mut(&name)
        .ok_or_else(|| cursor_missing(&name))?;
    if count.is_none() && timeout.is_none() && !cursor.bounded() {
        return Err(EngineError::Unsupported(
            "FETCH ALL on a continuous query would never end; use FETCH <n>, or FETCH ALL ... WITH (timeout = '1s')".into(),
        )
        .into());
    }
    let fields = pg_fields(&cursor.schema(), format)?;
    let rows = cursor.fetch(count, timeout, &fields).await?;
    Ok((fields, rows))
}

/// `MOVE`: the rows its `FETCH` would return are skipped; the command tag counts them.
async fn move_cursor(conn: &mut ConnState, fetch: &Statement) -> Result<String, RunError> {
    let (_, rows) = fetch_rows(conn, fetch, None, &Format::UnifiedText).await?;
    Ok(format!("MOVE {}", rows.len()))
}

/// Settings whose changes PostgreSQL reports to the client (ParameterStatus), by the name
/// it reports them under.
const REPORTED_SETTINGS: [&str; 5] = [
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
];

/// The reported setting a `SET` changes, if any.
fn reported_setting(statement: &LaminarStatement) -> Option<&'static str> {
    let LaminarStatement::Sql(sql) = statement else {
        return None;
    };
    let name = match sql.as_ref() {
        Statement::Set(Set::SingleAssignment { variable, .. }) => variable.to_string(),
        Statement::Set(Set::SetTimeZone { .. }) => "timezone".to_string(),
        _ => return None,
    };
    REPORTED_SETTINGS
        .into_iter()
        .find(|reported| reported.eq_ignore_ascii_case(&name))
}

/// A ParameterStatus message with the session's current value of `name`.
fn parameter_status(conn: &ConnState, name: &str) -> Option<PgWireBackendMessage> {
    let value = conn.session.get(name).ok()?;
    Some(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
        name.to_string(),
        value,
    )))
}

/// `CLOSE name` / `CLOSE ALL`; the command tag.
fn close_cursor(conn: &mut ConnState, cursor: &CloseCursor) -> Result<&'static str, EngineError> {
    match cursor {
        CloseCursor::All => {
            conn.cursors.clear();
            Ok("CLOSE CURSOR ALL")
        }
        CloseCursor::Specific { name } => {
            let name = ident_name(name);
            conn.cursors
                .remove(&name)
                .ok_or_else(|| cursor_missing(&name))?;
            Ok("CLOSE CURSOR")
        }
    }
}

/// The cursor a `FETCH` (with or without a timeout) reads, if `statement` is one.
fn fetch_target(statement: &LaminarStatement) -> Option<(&Statement, Option<std::time::Duration>)> {
    match statement {
        LaminarStatement::Sql(sql) if matches!(sql.as_ref(), Statement::Fetch { .. }) => {
            Some((sql.as_ref(), None))
        }
        LaminarStatement::FetchWithTimeout { fetch, timeout } => {
            Some((fetch.as_ref(), Some(*timeout)))
        }
        _ => None,
    }
}

impl QueryHandler {
    /// Run every statement of a simple query, writing results straight to the client.
    async fn run_simple<C>(
        &self,
        client: &mut C,
        conn: &Mutex<ConnState>,
        sql: &str,
        status: &mut TransactionStatus,
    ) -> Result<(), RunError>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = parse_sql(sql)?;
        if statements.is_empty() {
            client
                .send(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await
                .map_err(PgWireError::from)?;
            return Ok(());
        }
        let mut conn = conn.lock().await;
        for statement in statements {
            self.run_statement(client, &mut conn, statement, status)
                .await?;
        }
        Ok(())
    }

    /// `DECLARE name [NO SCROLL] CURSOR [WITH HOLD] FOR query`: start the query and keep its
    /// stream under the cursor's name (simple and extended protocol alike).
    async fn declare_cursor(
        &self,
        conn: &mut ConnState,
        stmts: &[engine::sqlparser::ast::Declare],
    ) -> Result<(), EngineError> {
        let declare = stmts
            .first()
            .ok_or_else(|| EngineError::Syntax("empty DECLARE".into()))?;
        let (Some(name), Some(query)) = (declare.names.first(), &declare.for_query) else {
            return Err(EngineError::Syntax(
                "expected DECLARE <name> CURSOR FOR <query>".into(),
            ));
        };
        let query = LaminarStatement::Sql(Box::new(Statement::Query(query.clone())));
        self.open_cursor(conn, ident_name(name), declare.hold == Some(true), query)
            .await
    }

    /// Start `statement` (a query or a `SUBSCRIBE`) and keep its stream under `name`.
    async fn open_cursor(
        &self,
        conn: &mut ConnState,
        name: String,
        hold: bool,
        statement: LaminarStatement,
    ) -> Result<(), EngineError> {
        if conn.cursors.contains_key(&name) {
            return Err(EngineError::DuplicateCursor(name));
        }
        let Outcome::Stream(stream) = self.engine.execute(&mut conn.session, statement).await?
        else {
            return Err(EngineError::Unsupported(
                "DECLARE CURSOR needs a query".into(),
            ));
        };
        let fields = pg_fields(&stream.schema, &Format::UnifiedText)
            .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
        conn.cursors.insert(name, Cursor::new(fields, stream, hold));
        Ok(())
    }

    /// `FETCH [n] FROM cursor`, optionally returning early at a timeout.
    async fn fetch<C>(
        &self,
        client: &mut C,
        conn: &mut ConnState,
        fetch: &Statement,
        timeout: Option<std::time::Duration>,
    ) -> Result<(), RunError>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (fields, rows) = fetch_rows(conn, fetch, timeout, &Format::UnifiedText).await?;
        client
            .send(PgWireBackendMessage::RowDescription(row_description(
                &fields,
            )))
            .await
            .map_err(PgWireError::from)?;
        let n = rows.len();
        for row in rows {
            client
                .feed(PgWireBackendMessage::DataRow(row))
                .await
                .map_err(PgWireError::from)?;
        }
        client
            .send(complete(format!("FETCH {n}")))
            .await
            .map_err(PgWireError::from)?;
        Ok(())
    }

    /// Stream a query's rows as COPY data, one message per batch.
    async fn copy_to_stdout<C>(
        &self,
        client: &mut C,
        conn: &mut ConnState,
        copy: CopyOut,
    ) -> Result<(), RunError>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = LaminarStatement::Sql(Box::new(copy.query));
        let Outcome::Stream(mut query) = self.engine.execute(&mut conn.session, statement).await?
        else {
            return Err(EngineError::Unsupported("COPY needs a query".into()).into());
        };
        let fields = pg_fields(&query.schema, &Format::UnifiedText)?;
        let columns = fields.len();
        client
            .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
                0,
                columns as i16,
                vec![0; columns],
            )))
            .await
            .map_err(PgWireError::from)?;
        if copy.format.header {
            let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
            let mut line = bytes::BytesMut::new();
            copy.format.header_line(&names, &mut line);
            client
                .send(PgWireBackendMessage::CopyData(CopyData::new(line.freeze())))
                .await
                .map_err(PgWireError::from)?;
        }
        let mut rows = 0usize;
        while let Some(batch) = query.stream.next().await {
            let batch = batch.map_err(EngineError::from)?;
            let mut data = bytes::BytesMut::with_capacity(batch.num_rows() * 32);
            // One CopyData per row, as PostgreSQL sends them (psycopg's copy.rows() reads a
            // row per message); lines share one buffer. A flush per batch: a COPY of a
            // stream delivers as it goes.
            for row in encode(&fields, batch) {
                copy.format.line(&row?, &mut data);
                let line = data.split().freeze();
                client
                    .feed(PgWireBackendMessage::CopyData(CopyData::new(line)))
                    .await
                    .map_err(PgWireError::from)?;
                rows += 1;
            }
            client.flush().await.map_err(PgWireError::from)?;
        }
        client
            .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
            .await
            .map_err(PgWireError::from)?;
        client
            .send(complete(format!("COPY {rows}")))
            .await
            .map_err(PgWireError::from)?;
        Ok(())
    }

    async fn run_statement<C>(
        &self,
        client: &mut C,
        conn: &mut ConnState,
        statement: LaminarStatement,
        status: &mut TransactionStatus,
    ) -> Result<(), RunError>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let LaminarStatement::DeclareSubscribe {
            name,
            hold,
            subscribe,
        } = statement
        {
            self.open_cursor(conn, name, hold, LaminarStatement::Subscribe(subscribe))
                .await?;
            client
                .send(complete("DECLARE CURSOR"))
                .await
                .map_err(PgWireError::from)?;
            return Ok(());
        }
        if let LaminarStatement::FetchWithTimeout { fetch, timeout } = &statement {
            return self.fetch(client, conn, fetch, Some(*timeout)).await;
        }
        if let LaminarStatement::Move(fetch) = &statement {
            let tag = move_cursor(conn, fetch).await?;
            client
                .send(complete(tag))
                .await
                .map_err(PgWireError::from)?;
            return Ok(());
        }
        if let LaminarStatement::Sql(sql) = &statement {
            match sql.as_ref() {
                Statement::Declare { stmts } => {
                    self.declare_cursor(conn, stmts).await?;
                    client
                        .send(complete("DECLARE CURSOR"))
                        .await
                        .map_err(PgWireError::from)?;
                    return Ok(());
                }
                Statement::Copy { .. } => {
                    if let Some(copy) = copy_out(sql)? {
                        self.copy_to_stdout(client, conn, copy).await?;
                        return Ok(());
                    }
                }
                Statement::Fetch { .. } => {
                    return self.fetch(client, conn, sql, None).await;
                }
                // DISCARD ALL also closes the session's cursors; the engine resets settings.
                Statement::Discard { .. } => conn.cursors.clear(),
                Statement::Close { cursor } => {
                    let tag = close_cursor(conn, cursor)?;
                    client
                        .send(complete(tag))
                        .await
                        .map_err(PgWireError::from)?;
                    return Ok(());
                }
                _ => {}
            }
        }
        let reported = reported_setting(&statement);
        match self.engine.execute(&mut conn.session, statement).await? {
            Outcome::Command(tag) => {
                if let Some(status) = reported.and_then(|name| parameter_status(conn, name)) {
                    client.feed(status).await.map_err(PgWireError::from)?;
                }
                match tag.as_str() {
                    "BEGIN" => *status = status.to_in_transaction_state(),
                    "COMMIT" | "ROLLBACK" => {
                        // Cursors without HOLD end with their transaction.
                        conn.cursors.retain(|_, cursor| cursor.hold);
                        *status = status.to_idle_state();
                    }
                    _ => {}
                }
                client
                    .send(complete(tag))
                    .await
                    .map_err(PgWireError::from)?;
            }
            Outcome::Rows(schema, batches) => {
                let fields = pg_fields(&schema, &Format::UnifiedText)?;
                client
                    .send(PgWireBackendMessage::RowDescription(row_description(
                        &fields,
                    )))
                    .await
                    .map_err(PgWireError::from)?;
                let mut n = 0;
                for batch in batches {
                    for row in encode(&fields, batch) {
                        client
                            .feed(PgWireBackendMessage::DataRow(row?))
                            .await
                            .map_err(PgWireError::from)?;
                        n += 1;
                    }
                }
                client
                    .send(complete(format!("SELECT {n}")))
                    .await
                    .map_err(PgWireError::from)?;
            }
            Outcome::Stream(mut query) => {
                let fields = pg_fields(&query.schema, &Format::UnifiedText)?;
                client
                    .send(PgWireBackendMessage::RowDescription(row_description(
                        &fields,
                    )))
                    .await
                    .map_err(PgWireError::from)?;
                let mut n = 0usize;
                while let Some(batch) = query.stream.next().await {
                    let batch = batch.map_err(EngineError::from)?;
                    for row in encode(&fields, batch) {
                        client
                            .feed(PgWireBackendMessage::DataRow(row?))
                            .await
                            .map_err(PgWireError::from)?;
                        n += 1;
                    }
                    // One flush per batch: rows reach the client as they are produced.
                    client.flush().await.map_err(PgWireError::from)?;
                }
                client
                    .send(complete(format!("SELECT {n}")))
                    .await
                    .map_err(PgWireError::from)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut status = client.transaction_status();
        let conn = conn_state(client);
        let cancel = cancel_receiver(client).await;
        let result = {
            let work = self.run_simple(client, &conn, &query.query, &mut status);
            tokio::select! {
                result = work => result,
                // Dropping `work` drops the query stream and with it the sources.
                _ = cancelled(cancel) => Err(RunError::Engine(EngineError::Canceled)),
            }
        };
        let failure = match result {
            Ok(()) => None,
            Err(RunError::Engine(e)) => Some(error_info(&e)),
            Err(RunError::Wire(PgWireError::UserError(info))) => Some(*info),
            Err(RunError::Wire(PgWireError::IoError(e))) => return Err(PgWireError::IoError(e)),
            Err(RunError::Wire(other)) => Some(ErrorInfo::new(
                "ERROR".into(),
                sqlstate::INTERNAL_ERROR.into(),
                other.to_string(),
            )),
        };
        if let Some(info) = failure {
            client
                .send(PgWireBackendMessage::ErrorResponse(info.into()))
                .await?;
            status = status.to_error_state();
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` above handles simple queries itself.
        Err(PgWireError::ApiError("simple query path not used".into()))
    }
}

/// A statement prepared with Parse: parsed once, with its result columns.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(super) statement: Option<LaminarStatement>,
    schema: Option<SchemaRef>,
    /// Types of `$1, $2, ...` as the planner inferred them (`None`: unconstrained).
    pub(super) params: Vec<Option<arrow::datatypes::DataType>>,
    /// Parameter types the SQL text names where the planner's type differs: `$1::oid[]` is
    /// planned as `integer[]` but described as `oid[]`, as asyncpg's type lookup expects.
    pub(super) cast_params: Vec<Option<Type>>,
}

/// Parses and describes statements for the extended query protocol.
pub(crate) struct LaminarParser {
    engine: Arc<Engine>,
}

#[async_trait]
impl QueryParser for LaminarParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Arc<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = parse_sql(sql).map_err(to_pg)?;
        if statements.len() > 1 {
            return Err(to_pg(EngineError::Syntax(
                "cannot insert multiple commands into a prepared statement".into(),
            )));
        }
        let mut statement = statements.pop();
        if let Some(LaminarStatement::Sql(query)) = &mut statement {
            let declared: Vec<Option<&str>> = types.iter().map(declared_type_name).collect();
            engine::sql::literals::declared_parameter_types(query, &declared);
        }
        // A query with $n placeholders is described from its logical plan (it cannot run
        // before the values come with Bind).
        if has_placeholders(sql)
            && let Some(LaminarStatement::Sql(query)) = &statement
            && matches!(query.as_ref(), Statement::Query(_))
        {
            let conn = conn_state(client);
            let conn = conn.lock().await;
            let (params, schema) = self
                .engine
                .describe_parameters(&conn.session, query)
                .await
                .map_err(to_pg)?;
            return Ok(Arc::new(Prepared {
                statement,
                schema: Some(schema),
                params,
                cast_params: oid_parameter_casts(sql),
            }));
        }
        let schema = match &statement {
            Some(statement) => {
                let conn = conn_state(client);
                let mut conn = conn.lock().await;
                match fetch_target(statement) {
                    // A FETCH returns its cursor's columns.
                    Some((Statement::Fetch { name, .. }, _)) => conn
                        .cursors
                        .get(&ident_name(name))
                        .map(|cursor| cursor.schema()),
                    _ => self
                        .engine
                        .output_schema(&mut conn.session, statement)
                        .await
                        .map_err(to_pg)?,
                }
            }
            None => None,
        };
        Ok(Arc::new(Prepared {
            statement,
            schema,
            params: Vec::new(),
            cast_params: Vec::new(),
        }))
    }

    fn get_parameter_types(&self, stmt: &Arc<Prepared>) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .params
            .iter()
            .enumerate()
            .map(|(i, t)| {
                param_pg_type(stmt.cast_params.get(i).and_then(Option::as_ref), t.as_ref())
            })
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Arc<Prepared>,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.schema {
            Some(schema) => Ok(pg_fields(schema, format.unwrap_or(&Format::UnifiedText))?.to_vec()),
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Arc<Prepared>;
    type QueryParser = LaminarParser;

    fn query_parser(&self) -> Arc<LaminarParser> {
        self.parser.clone()
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A DECLAREd cursor is a portal too: psycopg's named cursors describe it by name.
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
        {
            let conn = conn_state(client);
            let description = conn
                .lock()
                .await
                .cursors
                .get(name)
                .map(|cursor| row_description(&cursor.fields));
            if let Some(description) = description {
                client
                    .send(PgWireBackendMessage::RowDescription(description))
                    .await?;
                return Ok(());
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Arc<Prepared>>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Arc<Prepared>>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = portal_params(portal)?;
        let Some(statement) = portal.statement.statement.statement.clone() else {
            return Ok(Response::EmptyQuery);
        };
        let conn = conn_state(client);
        let mut conn = conn.lock().await;
        // psycopg's named cursors DECLARE through the extended protocol, then FETCH with
        // simple queries: both use the connection's cursors.
        if let LaminarStatement::Sql(sql) = &statement
            && let Statement::Declare { stmts } = sql.as_ref()
        {
            // The cursor's query is planned now, with this execution's parameter values.
            conn.session.params = params;
            let declared = self.declare_cursor(&mut conn, stmts).await;
            conn.session.params.clear();
            declared.map_err(to_pg)?;
            return Ok(Response::Execution(Tag::new("DECLARE CURSOR")));
        }
        if let LaminarStatement::Move(fetch) = &statement {
            return match move_cursor(&mut conn, fetch).await {
                Ok(tag) => Ok(Response::Execution(Tag::new(&tag))),
                Err(RunError::Engine(e)) => Err(to_pg(e)),
                Err(RunError::Wire(e)) => Err(e),
            };
        }
        if let Some((fetch, timeout)) = fetch_target(&statement) {
            let (fields, rows) =
                match fetch_rows(&mut conn, fetch, timeout, &portal.result_column_format).await {
                    Ok(fetched) => fetched,
                    Err(RunError::Engine(e)) => return Err(to_pg(e)),
                    Err(RunError::Wire(e)) => return Err(e),
                };
            let n = rows.len();
            let mut response = QueryResponse::new(fields, stream::iter(rows.into_iter().map(Ok)));
            response.set_command_tag(&format!("FETCH {n}"));
            return Ok(Response::Query(response));
        }
        if let LaminarStatement::Sql(sql) = &statement {
            match sql.as_ref() {
                Statement::Close { cursor } => {
                    let tag = close_cursor(&mut conn, cursor).map_err(to_pg)?;
                    return Ok(Response::Execution(Tag::new(tag)));
                }
                Statement::Discard { .. } => conn.cursors.clear(),
                _ => {}
            }
        }
        // The values hold for this execution only.
        conn.session.params = params;
        let reported = reported_setting(&statement);
        let outcome = self.engine.execute(&mut conn.session, statement).await;
        if outcome.is_ok()
            && let Some(status) = reported.and_then(|name| parameter_status(&conn, name))
        {
            client.feed(status).await?;
        }
        conn.session.params.clear();
        let outcome = outcome.map_err(to_pg)?;
        // The transaction's end closes its cursors (pgJDBC commits this way).
        if let Outcome::Command(tag) = &outcome
            && matches!(tag.as_str(), "COMMIT" | "ROLLBACK")
        {
            conn.cursors.retain(|_, cursor| cursor.hold);
        }
        drop(conn);
        let format = &portal.result_column_format;
        match outcome {
            Outcome::Command(tag) => Ok(match tag.as_str() {
                "BEGIN" => Response::TransactionStart(Tag::new(&tag)),
                "COMMIT" | "ROLLBACK" => Response::TransactionEnd(Tag::new(&tag)),
                _ => Response::Execution(Tag::new(&tag)),
            }),
            Outcome::Rows(schema, batches) => {
                let fields = pg_fields(&schema, format)?;
                let rows: Vec<_> = batches
                    .into_iter()
                    .flat_map(|b| encode(&fields, b).collect::<Vec<_>>())
                    .collect();
                Ok(Response::Query(QueryResponse::new(
                    fields,
                    stream::iter(rows),
                )))
            }
            Outcome::Stream(mut query) if max_rows == 0 => {
                // Stream every row now, flushing per batch (Describe sent the columns).
                let fields = pg_fields(&query.schema, format)?;
                let mut n = 0usize;
                while let Some(batch) = query.stream.next().await {
                    let batch = batch.map_err(|e| to_pg(e.into()))?;
                    for row in encode(&fields, batch) {
                        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                        n += 1;
                    }
                    client.flush().await?;
                }
                Ok(Response::Execution(Tag::new("SELECT").with_rows(n)))
            }
            Outcome::Stream(query) => {
                // Row-limited Execute: the portal keeps the stream and pulls `max_rows` at a time.
                let fields = pg_fields(&query.schema, format)?;
                let row_fields = fields.clone();
                let rows = query.stream.flat_map(move |batch| {
                    let rows: Vec<PgWireResult<_>> = match batch {
                        Ok(batch) => encode(&row_fields, batch).collect(),
                        Err(e) => vec![Err(to_pg(e.into()))],
                    };
                    stream::iter(rows)
                });
                Ok(Response::Query(QueryResponse::new(fields, rows)))
            }
        }
    }
}
