//! Execute one statement for a client session.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use catalog::FieldDef;
use connectors::options::nest;
use datafusion::physical_plan::{
    ExecutionPlanProperties, SendableRecordBatchStream, execute_stream,
};
use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, CreateTableOptions, CreateView, Expr, ObjectType, Reset, Set,
    ShowStatementOptions, Statement,
};

use crate::Engine;
use crate::ddl::{ProfileRequest, TableRequest};
use crate::error::{EngineError, Result};
use crate::rows::{Column, batch, text};
use crate::runtime::PipelineStatus;
use crate::session::Session;
use crate::sql::options::with_options;
use crate::sql::parse::{
    LaminarStatement, PipelineAction, Subscribe, SubscribeTarget, normalize_name,
};
use crate::stream::updating::{is_changelog, with_op_column};
use crate::subscribe::{PROGRESS_INTERVAL, with_progress};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

/// A running query's output. Dropping it stops the query and its sources.
pub struct QueryStream {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
    /// Whether the query ends by itself.
    pub bounded: bool,
}

/// What a statement produced.
pub enum Outcome {
    /// A command with its completion tag (`CREATE TABLE`, `SET`, ...).
    Command(String),
    /// A small, finite result.
    Rows(SchemaRef, Vec<RecordBatch>),
    /// A continuous (or bounded) query streaming its rows.
    Stream(QueryStream),
}

fn rows((schema, batch): (SchemaRef, RecordBatch)) -> Outcome {
    Outcome::Rows(schema, vec![batch])
}

fn pipeline_rows(statuses: &[PipelineStatus]) -> Result<Outcome> {
    let metric = |f: fn(&catalog::JobMetrics) -> u64| -> Vec<i64> {
        statuses
            .iter()
            .map(|s| s.job.as_ref().map_or(0, |j| f(&j.metrics) as i64))
            .collect()
    };
    Ok(rows(batch(vec![
        text("id", statuses.iter().map(|s| s.def.id.clone())),
        text("name", statuses.iter().map(|s| s.def.name.clone())),
        text("state", statuses.iter().map(|s| s.state.clone())),
        Column::Int("records_in", metric(|m| m.records_in)),
        Column::Int("records_out", metric(|m| m.records_out)),
        Column::Int("errors", metric(|m| m.errors)),
        Column::Int("late_records", metric(|m| m.late_records)),
        Column::Int("state_bytes", metric(|m| m.state_bytes)),
        Column::Float(
            "records_in_per_sec",
            statuses.iter().map(|s| s.rates.0.round()).collect(),
        ),
        Column::Float(
            "records_out_per_sec",
            statuses.iter().map(|s| s.rates.1.round()).collect(),
        ),
        Column::Text(
            "failure",
            statuses
                .iter()
                .map(|s| s.job.as_ref().and_then(|j| j.failure_message.clone()))
                .collect(),
        ),
        text("query", statuses.iter().map(|s| s.def.query.clone())),
    ])?))
}

fn expr_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

impl Engine {
    /// Execute one parsed statement.
    pub async fn execute(
        &self,
        session: &mut Session,
        statement: LaminarStatement,
    ) -> Result<Outcome> {
        match statement {
            LaminarStatement::CreateProfile {
                name,
                if_not_exists,
                options,
            } => {
                if if_not_exists && self.catalog.profile(&name).await.is_ok() {
                    return Ok(Outcome::Command("CREATE CONNECTION PROFILE".into()));
                }
                let mut options = with_options(&options)?;
                let connector = options.remove("connector").ok_or_else(|| {
                    EngineError::InvalidParameter(format!(
                        "missing required option 'connector' for connection profile '{name}'; available connectors: {}",
                        self.registry.names().join(", ")
                    ))
                })?;
                let description = options.remove("description");
                self.create_profile(ProfileRequest {
                    name,
                    connector,
                    description,
                    config: nest(&options)?,
                })
                .await?;
                Ok(Outcome::Command("CREATE CONNECTION PROFILE".into()))
            }
            LaminarStatement::DropProfile { name, if_exists } => {
                match self.catalog.drop_profile(&name).await {
                    Ok(_) => {}
                    Err(catalog::CatalogError::NotFound { .. }) if if_exists => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(Outcome::Command("DROP CONNECTION PROFILE".into()))
            }
            LaminarStatement::CreatePipeline { name, insert } => {
                let status = self
                    .create_pipeline(Some(name), &insert, session, None)
                    .await?;
                Ok(self.created_pipeline(&status)?)
            }
            LaminarStatement::Pipeline {
                action,
                name,
                if_exists,
            } => {
                let (tag, result) = match action {
                    PipelineAction::Start => (
                        "START PIPELINE",
                        self.start_pipeline(&name).await.map(|_| ()),
                    ),
                    PipelineAction::Stop => {
                        ("STOP PIPELINE", self.stop_pipeline(&name).await.map(|_| ()))
                    }
                    PipelineAction::Drop => {
                        ("DROP PIPELINE", self.drop_pipeline(&name).await.map(|_| ()))
                    }
                };
                match result {
                    Ok(()) => Ok(Outcome::Command(tag.into())),
                    Err(EngineError::Catalog(catalog::CatalogError::NotFound { .. }))
                        if if_exists =>
                    {
                        Ok(Outcome::Command(tag.into()))
                    }
                    Err(e) => Err(e),
                }
            }
            LaminarStatement::ShowPipelines => pipeline_rows(&self.pipeline_statuses().await?),
            LaminarStatement::ShowProfiles => {
                let profiles = self.catalog.profiles().await?;
                Ok(rows(batch(vec![
                    text("name", profiles.iter().map(|p| p.name.clone())),
                    text("connector", profiles.iter().map(|p| p.connector.clone())),
                    text("id", profiles.iter().map(|p| p.id.clone())),
                    Column::Text(
                        "description",
                        profiles.iter().map(|p| p.description.clone()).collect(),
                    ),
                ])?))
            }
            LaminarStatement::ShowJobs => {
                let jobs = self.jobs().await?;
                Ok(rows(batch(vec![
                    text("id", jobs.iter().map(|j| j.id.clone())),
                    text("pipeline_id", jobs.iter().map(|j| j.pipeline_id.clone())),
                    text("state", jobs.iter().map(|j| j.state.clone())),
                    Column::Int(
                        "records_in",
                        jobs.iter().map(|j| j.metrics.records_in as i64).collect(),
                    ),
                    Column::Int(
                        "records_out",
                        jobs.iter().map(|j| j.metrics.records_out as i64).collect(),
                    ),
                    Column::Text(
                        "failure",
                        jobs.iter().map(|j| j.failure_message.clone()).collect(),
                    ),
                ])?))
            }
            LaminarStatement::ShowConnectors => {
                let all: Vec<_> = self.registry.all().map(|c| c.metadata()).collect();
                let role = |m: &connectors::ConnectorMetadata| match (m.source, m.sink) {
                    (true, true) => "source, sink",
                    (true, false) => "source",
                    _ => "sink",
                };
                Ok(rows(batch(vec![
                    text("name", all.iter().map(|m| m.id.to_string())),
                    text("type", all.iter().map(|m| role(m).to_string())),
                    text("description", all.iter().map(|m| m.description.to_string())),
                ])?))
            }
            LaminarStatement::Subscribe(subscribe) => self.subscribe(session, subscribe).await,
            LaminarStatement::DeclareSubscribe { .. }
            | LaminarStatement::Move(_)
            | LaminarStatement::FetchWithTimeout { .. } => Err(EngineError::Unsupported(
                "DECLARE ... CURSOR is handled by the client connection".into(),
            )),
            LaminarStatement::Sql(statement) => self.execute_sql(session, *statement).await,
        }
    }

    /// `SUBSCRIBE`: a never-ending stream of changes with an `_op` column.
    pub async fn subscribe(&self, session: &Session, subscribe: Subscribe) -> Result<Outcome> {
        let stream = match subscribe.target {
            SubscribeTarget::View(name) => self.subscribe_view(&name)?,
            SubscribeTarget::Query(query) => {
                let planned = self.plan(session, &query).await?;
                let stream = execute_stream(planned.plan, planned.task_ctx)?;
                if is_changelog(&stream.schema()) {
                    stream
                } else {
                    as_inserts(stream)
                }
            }
        };
        let stream = if subscribe.progress {
            with_progress(stream, PROGRESS_INTERVAL)?
        } else {
            stream
        };
        Ok(Outcome::Stream(QueryStream {
            schema: stream.schema(),
            stream,
            bounded: false,
        }))
    }

    fn created_pipeline(&self, status: &PipelineStatus) -> Result<Outcome> {
        Ok(rows(batch(vec![
            text("pipeline_id", [status.def.id.clone()]),
            text("name", [status.def.name.clone()]),
            text("state", [status.state.clone()]),
        ])?))
    }

    async fn execute_sql(&self, session: &mut Session, statement: Statement) -> Result<Outcome> {
        match statement {
            Statement::CreateTable(create) => self.execute_create_table(create).await,
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => {
                for name in &names {
                    let name = normalize_name(name);
                    let dropped = match object_type {
                        ObjectType::Table => self.catalog.drop_table(&name).await.map(|_| ()),
                        ObjectType::View | ObjectType::MaterializedView => {
                            self.catalog.drop_view(&name).await.map(|view| {
                                self.drop_materialized_view(&view);
                            })
                        }
                        other => {
                            return Err(EngineError::Unsupported(format!(
                                "DROP {other} is not supported"
                            )));
                        }
                    };
                    match dropped {
                        Ok(()) => {}
                        Err(catalog::CatalogError::NotFound { .. }) if if_exists => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(Outcome::Command(format!("DROP {object_type}")))
            }
            Statement::ShowTables { .. } => {
                let tables = self.catalog.tables().await?;
                let views = self.catalog.views().await?;
                let listed = tables
                    .iter()
                    .map(|t| {
                        (
                            t.name.clone(),
                            t.connector.clone(),
                            t.table_type.clone(),
                            t.id.clone(),
                        )
                    })
                    .chain(views.iter().map(|v| {
                        (
                            v.name.clone(),
                            String::new(),
                            if v.materialized {
                                "materialized view".to_string()
                            } else {
                                "view".to_string()
                            },
                            v.id.clone(),
                        )
                    }));
                let (names, (connectors, (types, ids))): (Vec<_>, (Vec<_>, (Vec<_>, Vec<_>))) =
                    listed.map(|(n, c, t, i)| (n, (c, (t, i)))).unzip();
                Ok(rows(batch(vec![
                    text("name", names),
                    text("connector", connectors),
                    text("type", types),
                    text("id", ids),
                ])?))
            }
            Statement::CreateView(create) => self.execute_create_view(session, create).await,
            Statement::ExplainTable { table_name, .. } => {
                self.describe(&normalize_name(&table_name)).await
            }
            Statement::ShowColumns { show_options, .. } => {
                let name = show_target(&show_options)
                    .ok_or_else(|| EngineError::Syntax("SHOW COLUMNS needs FROM <table>".into()))?;
                self.describe(&name).await
            }
            Statement::Set(set) => {
                match set {
                    Set::SingleAssignment {
                        variable, values, ..
                    } => {
                        let value = values.iter().map(expr_text).collect::<Vec<_>>().join(", ");
                        session.set(&variable.to_string(), &value)?;
                    }
                    Set::SetTimeZone { value, .. } => {
                        session.set("timezone", &expr_text(&value))?
                    }
                    // SET NAMES, SET TRANSACTION, ...: accepted for client compatibility.
                    _ => {}
                }
                Ok(Outcome::Command("SET".into()))
            }
            Statement::ShowVariable { variable } => {
                let name = variable
                    .iter()
                    .map(|i| i.value.clone())
                    .collect::<Vec<_>>()
                    .join(" ");
                if name.eq_ignore_ascii_case("all") {
                    let (names, values): (Vec<_>, Vec<_>) = session.settings().into_iter().unzip();
                    let descriptions = vec![String::new(); names.len()];
                    return Ok(rows(batch(vec![
                        text("name", names),
                        text("setting", values),
                        text("description", descriptions),
                    ])?));
                }
                let name = match name.to_ascii_lowercase().as_str() {
                    "transaction isolation level" => "transaction_isolation".to_string(),
                    other => other.to_string(),
                };
                let value = session.get(&name)?;
                let column: &'static str = Box::leak(name.into_boxed_str());
                Ok(rows(batch(vec![text(column, [value])])?))
            }
            Statement::Reset(reset) => {
                match reset.reset {
                    Reset::ALL => session.reset(None),
                    Reset::ConfigurationParameter(name) => session.reset(Some(&name.to_string())),
                }
                Ok(Outcome::Command("RESET".into()))
            }
            // Connection poolers and drivers (asyncpg, psycopg) clean up sessions with these;
            // Laminar has no SQL-level prepared statements or notifications to drop.
            Statement::Discard { .. } => {
                session.reset(None);
                Ok(Outcome::Command("DISCARD ALL".into()))
            }
            Statement::Deallocate { name, .. } if name.value.eq_ignore_ascii_case("all") => {
                Ok(Outcome::Command("DEALLOCATE ALL".into()))
            }
            Statement::Deallocate { name, .. } => Err(EngineError::Unsupported(format!(
                "DEALLOCATE {name}: SQL PREPARE and EXECUTE are not supported (use the extended protocol's prepared statements); DEALLOCATE ALL is accepted"
            ))),
            Statement::UNLISTEN { .. } => Ok(Outcome::Command("UNLISTEN".into())),
            // Accepted like BEGIN/COMMIT (SQLAlchemy and psycopg nest transactions with them);
            // statements are not transactional in Laminar.
            Statement::Savepoint { .. } => Ok(Outcome::Command("SAVEPOINT".into())),
            Statement::ReleaseSavepoint { .. } => Ok(Outcome::Command("RELEASE".into())),
            Statement::StartTransaction { .. } => Ok(Outcome::Command("BEGIN".into())),
            Statement::Commit { .. } => Ok(Outcome::Command("COMMIT".into())),
            Statement::Rollback { .. } => Ok(Outcome::Command("ROLLBACK".into())),
            insert @ Statement::Insert(_) => {
                let status = self.create_pipeline(None, &insert, session, None).await?;
                self.created_pipeline(&status)
            }
            Statement::Explain {
                statement,
                analyze: false,
                ..
            } => {
                // Plan the statement ourselves, so EXPLAIN shows the operators that really run.
                let planned = self.plan(session, &statement).await?;
                let physical = operator_graph(&planned.plan);
                Ok(rows(batch(vec![
                    text(
                        "plan_type",
                        ["logical_plan".to_string(), "physical_plan".to_string()],
                    ),
                    text(
                        "plan",
                        [planned.logical.display_indent().to_string(), physical],
                    ),
                ])?))
            }
            query @ Statement::Query(_) => {
                let planned = self.plan(session, &query).await?;
                let bounded = !planned.plan.boundedness().is_unbounded();
                let schema = planned.schema();
                let stream = execute_stream(planned.plan, planned.task_ctx)?;
                Ok(Outcome::Stream(QueryStream {
                    schema,
                    stream,
                    bounded,
                }))
            }
            other => Err(EngineError::Unsupported(format!(
                "statement not supported: {}",
                other
                    .to_string()
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }

    async fn execute_create_table(&self, create: CreateTable) -> Result<Outcome> {
        if create.query.is_some() {
            return Err(EngineError::Unsupported(
                "CREATE TABLE ... AS SELECT is not supported; create a sink table and INSERT INTO it".into(),
            ));
        }
        let name = normalize_name(&create.name);
        if create.if_not_exists && self.catalog.table(&name).await.is_ok() {
            return Ok(Outcome::Command("CREATE TABLE".into()));
        }
        let options = match &create.table_options {
            CreateTableOptions::With(options) => with_options(options)?,
            CreateTableOptions::None => {
                return Err(EngineError::InvalidParameter(format!(
                    "table '{name}' needs WITH (connector = '...', ...); available connectors: {}",
                    self.registry.names().join(", ")
                )));
            }
            other => {
                return Err(EngineError::Syntax(format!(
                    "expected WITH (...) options, found {other}"
                )));
            }
        };
        let fields = if create.columns.is_empty() {
            None
        } else {
            Some(
                create
                    .columns
                    .iter()
                    .map(|c| FieldDef {
                        name: c.name.value.clone(),
                        data_type: c.data_type.to_string(),
                        nullable: !c
                            .options
                            .iter()
                            .any(|o| matches!(o.option, ColumnOption::NotNull)),
                    })
                    .collect(),
            )
        };
        let mut request = TableRequest::from_sql(self, name, fields, options)?;
        request.primary_key = primary_key(&create);
        self.create_table(request).await?;
        Ok(Outcome::Command("CREATE TABLE".into()))
    }

    async fn execute_create_view(&self, session: &Session, create: CreateView) -> Result<Outcome> {
        let name = normalize_name(&create.name);
        if self.catalog.table(&name).await.is_ok() {
            return Err(catalog::CatalogError::Duplicate {
                kind: "table",
                name,
            }
            .into());
        }
        let tag = if create.materialized {
            "CREATE MATERIALIZED VIEW"
        } else {
            "CREATE VIEW"
        };
        if create.if_not_exists && self.catalog.view(&name).await.is_ok() {
            return Ok(Outcome::Command(tag.into()));
        }
        let query = create.query.to_string();
        // Plan it now: a view that does not plan is never stored.
        let planned = self
            .plan(session, &Statement::Query(create.query.clone()))
            .await?;
        let view = catalog::ViewDef {
            id: catalog::new_id("view"),
            name,
            query,
            tables: planned.tables.clone(),
            created_at: catalog::now_rfc3339(),
            materialized: create.materialized,
            updating_ttl_micros: create
                .materialized
                .then(|| u64::try_from(session.updating_ttl.as_micros()).unwrap_or(u64::MAX)),
            checkpoint_interval_micros: create.materialized.then(|| {
                u64::try_from(session.checkpoint_interval.as_micros()).unwrap_or(u64::MAX)
            }),
            parallelism: create
                .materialized
                .then(|| u32::try_from(session.parallelism).unwrap_or(u32::MAX)),
        };
        if create.or_replace
            && let Ok(old) = self.catalog.view(&view.name).await
        {
            self.catalog.drop_view(&view.name).await?;
            self.drop_materialized_view(&old);
        }
        self.catalog.create_view(&view).await?;
        if view.materialized {
            let checkpoints = self.view_checkpoints(&view, &planned);
            self.mviews.start(&view.name, planned, checkpoints)?;
        }
        Ok(Outcome::Command(tag.into()))
    }

    async fn describe(&self, name: &str) -> Result<Outcome> {
        if self.catalog.view(name).await.is_ok() {
            return describe_rows(&self.view_schema(name).await?);
        }
        let table = self.resolve_table(name).await?;
        describe_rows(&table.schema)
    }
}

impl Engine {
    /// A view's columns, as the planner derives them.
    pub(crate) async fn view_schema(&self, name: &str) -> Result<SchemaRef> {
        Ok(self
            .plan(&Session::default(), &parse_view_query(name)?)
            .await?
            .schema())
    }
}

/// `SELECT * FROM <view>`, to describe a view through the planner.
fn parse_view_query(name: &str) -> Result<Statement> {
    let quoted = name.replace('"', "\"\"");
    match crate::sql::parse::parse_sql(&format!("SELECT * FROM \"{quoted}\""))?.pop() {
        Some(LaminarStatement::Sql(statement)) => Ok(*statement),
        _ => Err(EngineError::InvalidParameter(format!(
            "cannot describe view '{name}'"
        ))),
    }
}

fn describe_rows(schema: &SchemaRef) -> Result<Outcome> {
    let fields = schema.fields();
    {
        Ok(rows(batch(vec![
            text("column_name", fields.iter().map(|f| f.name().clone())),
            text(
                "data_type",
                fields
                    .iter()
                    .map(|f| connectors::schema::sql_type_name(f.data_type())),
            ),
            text(
                "is_nullable",
                fields
                    .iter()
                    .map(|f| if f.is_nullable() { "YES" } else { "NO" }.to_string()),
            ),
        ])?))
    }
}

fn show_target(options: &ShowStatementOptions) -> Option<String> {
    options
        .show_in
        .as_ref()
        .and_then(|s| s.parent_name.as_ref())
        .map(normalize_name)
}

impl Engine {
    /// The columns a statement will return, without running it (for the extended query
    /// protocol's Describe). `None` for statements that return no rows.
    pub async fn output_schema(
        &self,
        session: &mut Session,
        statement: &LaminarStatement,
    ) -> Result<Option<SchemaRef>> {
        match statement {
            LaminarStatement::CreatePipeline { .. } => Ok(Some(pipeline_id_schema()?)),
            LaminarStatement::ShowPipelines
            | LaminarStatement::ShowProfiles
            | LaminarStatement::ShowJobs
            | LaminarStatement::ShowConnectors
            | LaminarStatement::Subscribe(_) => self.read_only_schema(session, statement).await,
            LaminarStatement::Sql(sql) => match sql.as_ref() {
                Statement::Query(_) | Statement::Explain { .. } => {
                    Ok(Some(self.plan(session, sql).await?.schema()))
                }
                Statement::Insert(_) => Ok(Some(pipeline_id_schema()?)),
                Statement::ShowTables { .. }
                | Statement::ShowColumns { .. }
                | Statement::ExplainTable { .. }
                | Statement::ShowVariable { .. } => self.read_only_schema(session, statement).await,
                _ => Ok(None),
            },
            LaminarStatement::CreateProfile { .. }
            | LaminarStatement::DropProfile { .. }
            | LaminarStatement::DeclareSubscribe { .. }
            | LaminarStatement::FetchWithTimeout { .. }
            | LaminarStatement::Move(_)
            | LaminarStatement::Pipeline { .. } => Ok(None),
        }
    }

    async fn read_only_schema(
        &self,
        session: &mut Session,
        statement: &LaminarStatement,
    ) -> Result<Option<SchemaRef>> {
        match self.execute(session, statement.clone()).await? {
            Outcome::Rows(schema, _) => Ok(Some(schema)),
            Outcome::Stream(stream) => Ok(Some(stream.schema)),
            Outcome::Command(_) => Ok(None),
        }
    }
}

/// The physical plan, one operator per line, each with its parallelism (state is in each
/// streaming operator's own description).
fn operator_graph(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> String {
    fn walk(
        plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        depth: usize,
        out: &mut String,
    ) {
        let line = datafusion::physical_plan::displayable(plan.as_ref())
            .one_line()
            .to_string();
        out.push_str(&"  ".repeat(depth));
        out.push_str(line.trim_end());
        out.push_str(&format!(
            " [parallelism {}]\n",
            plan.output_partitioning().partition_count()
        ));
        for child in plan.children() {
            walk(child, depth + 1, out);
        }
    }
    let mut out = String::new();
    walk(plan, 0, &mut out);
    out
}

/// An append-only stream as changes: every row an insert (`_op` = `+I`).
fn as_inserts(stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
    let schema = with_op_column(&stream.schema());
    let out_schema = schema.clone();
    let mapped = stream.map(move |batch| {
        let batch = batch?;
        let ops: arrow::array::ArrayRef =
            std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                std::iter::repeat_n("+I", batch.num_rows()),
            ));
        let mut columns = batch.columns().to_vec();
        columns.push(ops);
        Ok(RecordBatch::try_new(out_schema.clone(), columns)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, mapped))
}

fn pipeline_id_schema() -> Result<SchemaRef> {
    Ok(batch(vec![
        text("pipeline_id", Vec::<String>::new()),
        text("name", Vec::<String>::new()),
        text("state", Vec::<String>::new()),
    ])?
    .0)
}

/// The `PRIMARY KEY` columns of a CREATE TABLE: a table constraint or a column option.
fn primary_key(create: &CreateTable) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::TableConstraint;
    let from_constraint = create.constraints.iter().find_map(|c| match c {
        TableConstraint::PrimaryKey(pk) => Some(
            pk.columns
                .iter()
                .map(|c| c.column.expr.to_string().trim_matches('"').to_string())
                .collect::<Vec<_>>(),
        ),
        _ => None,
    });
    from_constraint.unwrap_or_else(|| {
        create
            .columns
            .iter()
            .filter(|c| {
                c.options
                    .iter()
                    .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)))
            })
            .map(|c| c.name.value.clone())
            .collect()
    })
}
