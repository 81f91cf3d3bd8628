//! From a SQL statement to a physical plan over connector tables.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use connectors::TableRole;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::MemTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Statement, TableObject};
use futures::future::BoxFuture;

use crate::Engine;
use crate::ddl::ResolvedTable;
use crate::error::{EngineError, Result};
use crate::exec::filter::use_streaming_filters;
use crate::exec::introspection::{CatalogUse, catalog_use, is_catalog_reference};
use crate::exec::sink::SinkTable;
use crate::exec::source::ConnectorPartition;
use crate::metrics::Counters;
use crate::session::Session;
use crate::sql::literals::postgres_literals;
use crate::sql::naming::postgres_column_names;
use crate::sql::parse::{LaminarStatement, normalize_name, parse_sql};
use crate::stream::event_time::{EventTimes, bind_window_time, check_window_placement};
use crate::stream::functions::window_functions;
use crate::stream::rewrite::{StreamingContext, use_streaming_aggregates};
use crate::stream::watermark::{DEFAULT_IDLE_TIMEOUT, WatermarkSpec};
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_optimizer::sanity_checker::SanityCheckPlan;

/// A statement planned and ready to execute.
pub struct Planned {
    /// The optimized logical plan (shown by EXPLAIN).
    pub logical: datafusion::logical_expr::LogicalPlan,
    /// The physical plan that runs, with Laminar's streaming operators swapped in.
    pub plan: Arc<dyn ExecutionPlan>,
    pub task_ctx: Arc<TaskContext>,
    pub counters: Arc<Counters>,
    /// Every catalog table the statement reads or writes.
    pub tables: Vec<String>,
    /// The sink table, for `INSERT`.
    pub sink: Option<String>,
}

impl Planned {
    /// Output schema.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }
}

/// What planning learns while registering a statement's tables.
#[derive(Default)]
struct Registered {
    /// Every catalog table the statement reads or writes.
    tables: Vec<String>,
    /// Source tables' event time columns.
    event_times: EventTimes,
    /// Source tables that have an event time (and so a watermark).
    watermark_tables: Vec<String>,
}

fn session_context(session: &Session) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(session.batch_size)
        .with_information_schema(false);
    let options = config.options_mut();
    options.sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    // TIMESTAMPTZ and now() carry a zone (UTC), so clients see timestamptz, not timestamp.
    options.execution.time_zone = Some("+00:00".to_string());
    options.execution.coalesce_batches = false;
    // The sanity check that refuses blocking operators over unbounded input runs after
    // Laminar has swapped in its streaming operators (see `Engine::plan`).
    let rules = PhysicalOptimizer::new()
        .rules
        .into_iter()
        .filter(|rule| rule.name() != SanityCheckPlan::new().name())
        .collect();
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    for function in crate::exec::functions::laminar_functions()
        .into_iter()
        .chain(window_functions())
    {
        ctx.register_udf(function);
    }
    ctx
}

/// A sink table declared without columns takes those of the query that writes it (as in the
/// product page's REST example: a sink with only a format). Its connector checks them then.
async fn take_columns_from_query(
    ctx: &SessionContext,
    insert: &datafusion::sql::sqlparser::ast::Insert,
    target: &str,
) -> Result<()> {
    let Some(source) = &insert.source else {
        return Ok(());
    };
    let Some(provider) = ctx.table_provider(target).await.ok() else {
        return Ok(());
    };
    let Some(sink) = provider.as_any().downcast_ref::<SinkTable>() else {
        return Ok(());
    };
    if !sink.schema_is_open() {
        return Ok(());
    }
    let query = DfStatement::Statement(Box::new(Statement::Query(source.clone())));
    let plan = ctx.state().statement_to_plan(query).await?;
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let sink = sink.with_schema(schema)?;
    ctx.deregister_table(target)?;
    ctx.register_table(target, Arc::new(sink))?;
    Ok(())
}

impl Engine {
    /// Plan a query, `INSERT` or `EXPLAIN` against the catalog's tables.
    pub async fn plan(&self, session: &Session, statement: &Statement) -> Result<Planned> {
        let ctx = session_context(session);
        if catalog_use(statement) == CatalogUse::Reads {
            self.refresh_introspection().await?;
        }
        self.introspection()?.install(&ctx, session.settings())?;
        let mut statement = statement.clone();
        postgres_column_names(&mut statement);
        postgres_literals(&mut statement);
        crate::sql::insert_values::values_as_tables(&ctx, &mut statement).await?;
        let statement = &statement;
        let df_statement = DfStatement::Statement(Box::new(statement.clone()));
        let insert_target = match statement {
            Statement::Insert(insert) => match &insert.table {
                TableObject::TableName(name) => Some(normalize_name(name)),
                TableObject::TableFunction(_) => {
                    return Err(EngineError::Unsupported(
                        "INSERT INTO a table function is not supported".into(),
                    ));
                }
            },
            _ => None,
        };
        let counters = Arc::new(Counters::default());
        let registered = self
            .register_statement_tables(
                &ctx,
                session,
                &df_statement,
                insert_target.as_deref(),
                &counters,
            )
            .await?;
        if let (Statement::Insert(insert), Some(target)) = (statement, &insert_target) {
            take_columns_from_query(&ctx, insert, target).await?;
        }
        let logical = ctx.state().statement_to_plan(df_statement).await?;
        let logical = bind_parameters(logical, &session.params)?;
        check_window_placement(&logical)?;
        let logical = bind_window_time(logical, &registered.event_times)?;
        let optimized = ctx.state().optimize(&logical)?;
        let physical = ctx.state().create_physical_plan(&logical).await?;
        let plan = use_streaming_filters(physical)?;
        let plan = crate::stream::parallel::exchanges_for_merges(plan)?;
        let streaming = StreamingContext {
            watermark_tables: &registered.watermark_tables,
            counters: &counters,
            updating_ttl: session.updating_ttl,
        };
        let plan = use_streaming_aggregates(plan, &streaming)?;
        let plan = crate::stream::parallel::spread_keyed_operators(plan, session.parallelism)?;
        let plan = crate::exec::limit::use_streaming_limits(plan)?;
        let plan = SanityCheckPlan::new()
            .optimize(plan, ctx.state().config_options())
            .map_err(explain_pipeline_breakers)?;
        Ok(Planned {
            logical: optimized,
            plan,
            task_ctx: ctx.task_ctx(),
            counters,
            tables: registered.tables,
            sink: insert_target,
        })
    }

    /// Register every table and view a statement references.
    async fn register_statement_tables(
        &self,
        ctx: &SessionContext,
        session: &Session,
        statement: &DfStatement,
        insert_target: Option<&str>,
        counters: &Arc<Counters>,
    ) -> Result<Registered> {
        let mut registered = Registered::default();
        let table_functions: Vec<String> = ctx.state().table_functions().keys().cloned().collect();
        for reference in ctx.state().resolve_table_references(statement)? {
            // System catalogs and table functions (`generate_series(1, 3)`,
            // `pg_get_keywords()`) are DataFusion's to resolve.
            if is_catalog_reference(&reference)
                || table_functions.iter().any(|f| f == reference.table())
                || crate::sql::insert_values::is_values_table(reference.table())
            {
                continue;
            }
            self.register_relation(
                ctx,
                session,
                reference.table(),
                insert_target,
                counters,
                &mut registered,
                0,
            )
            .await?;
        }
        Ok(registered)
    }

    /// Register a table, or a view with everything it reads, under its name.
    #[allow(clippy::too_many_arguments)]
    fn register_relation<'a>(
        &'a self,
        ctx: &'a SessionContext,
        session: &'a Session,
        name: &'a str,
        insert_target: Option<&'a str>,
        counters: &'a Arc<Counters>,
        registered: &'a mut Registered,
        depth: usize,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if registered.tables.iter().any(|t| t == name) {
                return Ok(());
            }
            if depth > MAX_VIEW_DEPTH {
                return Err(EngineError::InvalidParameter(format!(
                    "view '{name}' nests more than {MAX_VIEW_DEPTH} levels deep (is it recursive?)"
                )));
            }
            match self.catalog.view(name).await {
                Ok(view) if view.materialized => {
                    // A materialized view reads as its current contents: a finite table.
                    let contents = self.materialized_view(name)?;
                    let table = MemTable::try_new(contents.schema(), vec![vec![contents]])?;
                    ctx.register_table(name, Arc::new(table))?;
                }
                Ok(view) => {
                    let mut statement = view_statement(&view.query)?;
                    postgres_column_names(&mut statement);
                    postgres_literals(&mut statement);
                    let df_statement = DfStatement::Statement(Box::new(statement));
                    for reference in ctx.state().resolve_table_references(&df_statement)? {
                        self.register_relation(
                            ctx,
                            session,
                            reference.table(),
                            None,
                            counters,
                            registered,
                            depth + 1,
                        )
                        .await?;
                    }
                    let plan = ctx.state().statement_to_plan(df_statement).await?;
                    ctx.register_table(
                        name,
                        Arc::new(ViewTable::new(plan, Some(view.query.clone()))),
                    )?;
                }
                Err(catalog::CatalogError::NotFound { .. }) => {
                    let table = self.resolve_table(name).await?;
                    let dlq = self
                        .dead_letter_table(&table.def.name, &table.format)
                        .await?;
                    if let Some(dlq) = &dlq
                        && !registered.tables.contains(&dlq.def.name)
                    {
                        registered.tables.push(dlq.def.name.clone());
                    }
                    self.register(
                        ctx,
                        session,
                        table,
                        dlq,
                        insert_target == Some(name),
                        counters,
                        registered,
                    )?;
                }
                Err(e) => return Err(e.into()),
            }
            registered.tables.push(name.to_string());
            Ok(())
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &self,
        ctx: &SessionContext,
        session: &Session,
        table: ResolvedTable,
        dlq: Option<ResolvedTable>,
        is_insert_target: bool,
        counters: &Arc<Counters>,
        registered: &mut Registered,
    ) -> Result<()> {
        let name = table.def.name.clone();
        match (table.role, is_insert_target) {
            (TableRole::Sink, true) => {
                ctx.register_table(&name, Arc::new(SinkTable::new(table, counters.clone())))?;
            }
            (TableRole::Source, true) => {
                return Err(EngineError::WrongObjectType(format!(
                    "cannot INSERT INTO '{name}': it is a source table; INSERT needs a table created with type = 'sink'"
                )));
            }
            (TableRole::Sink, false) => {
                return Err(EngineError::WrongObjectType(format!(
                    "cannot SELECT from '{name}': it is a sink table; queries read from source tables"
                )));
            }
            (TableRole::Source, false) => {
                // A source of changes (debezium_json) emits the table's columns and `_op`.
                let mut table = table;
                if table.format.format == Some(connectors::format::Format::DebeziumJson) {
                    table.schema = crate::stream::updating::with_op_column(&table.schema);
                }
                let bounded = table.connector.bounded(&table.def.config)?;
                let partitions = session.parallelism.max(1);
                let event_time = watermark_spec(&table)?;
                if event_time.is_some() {
                    registered.watermark_tables.push(name.clone());
                    if let Some(field) = &table.def.event_time_field {
                        registered.event_times.insert(name.clone(), field.clone());
                    }
                }
                let streams: Vec<Arc<dyn PartitionStream>> = (0..partitions)
                    .map(|p| {
                        let partition = ConnectorPartition::new(
                            table.clone(),
                            p,
                            partitions,
                            session.batch_size,
                            counters.clone(),
                            dlq.clone(),
                        );
                        let partition = match &event_time {
                            Some(spec) => partition.with_event_time(spec.clone()),
                            None => partition,
                        };
                        Arc::new(partition) as Arc<dyn PartitionStream>
                    })
                    .collect();
                let provider = StreamingTable::try_new(table.schema.clone(), streams)?
                    .with_infinite_table(!bounded);
                ctx.register_table(&name, Arc::new(provider))?;
            }
        }
        Ok(())
    }
}

/// How a source table that declares an event time derives its watermark.
fn watermark_spec(table: &ResolvedTable) -> Result<Option<WatermarkSpec>> {
    let Some(field) = &table.def.event_time_field else {
        return Ok(None);
    };
    let column = table.schema.index_of(field).map_err(|_| {
        EngineError::InvalidParameter(format!(
            "event time column '{field}' of table '{}' is not in its schema",
            table.def.name
        ))
    })?;
    let delay_text = table.def.watermark_delay.as_deref().unwrap_or("0");
    let delay = connectors::options::parse_duration(delay_text).ok_or_else(|| {
        EngineError::InvalidParameter(format!(
            "invalid watermark_delay '{delay_text}' on table '{}'",
            table.def.name
        ))
    })?;
    let idle_timeout = match table.def.idle_time.as_deref() {
        None => Some(DEFAULT_IDLE_TIMEOUT),
        Some(text) => match connectors::options::parse_duration(text) {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => {
                return Err(EngineError::InvalidParameter(format!(
                    "invalid idle_time '{text}' on table '{}'",
                    table.def.name
                )));
            }
        },
    };
    Ok(Some(WatermarkSpec {
        table: table.def.name.clone(),
        column,
        delay,
        idle_timeout,
    }))
}

impl Engine {
    /// The current contents of a running materialized view.
    pub(crate) fn materialized_view(&self, name: &str) -> Result<arrow::array::RecordBatch> {
        match self.mviews.get(name) {
            Some(view) => view.snapshot(),
            None => Err(EngineError::InvalidParameter(format!(
                "materialized view '{name}' is not running (its query could not be restarted; see the server log)"
            ))),
        }
    }

    /// Start maintaining a stored materialized view (at server start).
    pub(crate) async fn start_materialized_view(&self, view: &catalog::ViewDef) -> Result<()> {
        let statement = view_statement(&view.query)?;
        let mut session = Session::default();
        if let Some(ttl) = view.updating_ttl_micros {
            session.updating_ttl = std::time::Duration::from_micros(ttl);
        }
        if let Some(parallelism) = view.parallelism {
            session.parallelism = parallelism.max(1) as usize;
        }
        let planned = self.plan(&session, &statement).await?;
        let checkpoints = self.view_checkpoints(view, &planned);
        self.mviews.start(&view.name, planned, checkpoints)
    }

    /// Where and how often a materialized view takes checkpoints, if it does (a data
    /// directory, an interval above 0, and a plan whose state checkpoints capture).
    pub(crate) fn view_checkpoints(
        &self,
        view: &catalog::ViewDef,
        planned: &Planned,
    ) -> Option<crate::mview::ViewCheckpoints> {
        let data_dir = self.catalog.data_dir()?;
        let interval = match view.checkpoint_interval_micros {
            Some(micros) => std::time::Duration::from_micros(micros),
            None => Session::default().checkpoint_interval,
        };
        if interval.is_zero() {
            return None;
        }
        if let Some(operator) = crate::checkpoint::checkpoint_blocker(&planned.plan) {
            tracing::info!(view = %view.name, %operator, "materialized view runs without checkpoints");
            return None;
        }
        Some(crate::mview::ViewCheckpoints {
            id: view.id.clone(),
            interval,
            store: crate::checkpoint::CheckpointStore::new(data_dir, &view.id),
        })
    }

    /// Stop a dropped (or replaced) view and forget its checkpoints.
    pub(crate) fn drop_materialized_view(&self, view: &catalog::ViewDef) {
        self.mviews.stop(&view.name);
        if let Some(data_dir) = self.catalog.data_dir()
            && let Err(e) = crate::checkpoint::CheckpointStore::new(data_dir, &view.id).remove_all()
        {
            tracing::warn!(view = %view.name, error = %e, "could not remove the view's checkpoints");
        }
    }

    /// `SUBSCRIBE mv`: the view's contents, then its changes.
    pub(crate) fn subscribe_view(
        &self,
        name: &str,
    ) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
        match self.mviews.get(name) {
            Some(view) => view.subscribe(),
            None => Err(EngineError::WrongObjectType(format!(
                "'{name}' is not a materialized view; SUBSCRIBE takes a materialized view or a (query)"
            ))),
        }
    }
}

/// Put `$n` values into a plan; a plan with parameters but no values cannot run.
/// Types PostgreSQL gives parameters DataFusion leaves open: the type a parameter is cast
/// to (`$1::date`), boolean for a bare `WHERE $1`, bigint for `LIMIT $1` / `OFFSET $1`.
fn context_parameter_types(
    plan: &datafusion::logical_expr::LogicalPlan,
) -> std::collections::HashMap<String, arrow::datatypes::DataType> {
    use arrow::datatypes::DataType;
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Cast, Expr, LogicalPlan, TryCast};
    let mut found = std::collections::HashMap::new();
    let _ = plan.apply_with_subqueries(|node| {
        let mut bare = |expr: Option<&Expr>, data_type: DataType| {
            if let Some(Expr::Placeholder(placeholder)) = expr {
                found.entry(placeholder.id.clone()).or_insert(data_type);
            }
        };
        match node {
            LogicalPlan::Filter(filter) => bare(Some(&filter.predicate), DataType::Boolean),
            LogicalPlan::Limit(limit) => {
                bare(limit.fetch.as_deref(), DataType::Int64);
                bare(limit.skip.as_deref(), DataType::Int64);
            }
            _ => {}
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::Cast(Cast { expr, data_type })
                | Expr::TryCast(TryCast { expr, data_type }) = e
                    && let Expr::Placeholder(placeholder) = expr.as_ref()
                {
                    found
                        .entry(placeholder.id.clone())
                        .or_insert_with(|| data_type.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    found
}

fn bind_parameters(
    logical: datafusion::logical_expr::LogicalPlan,
    params: &[datafusion::common::ScalarValue],
) -> Result<datafusion::logical_expr::LogicalPlan> {
    // The highest `$n` used. Values beyond it are left unused: a tool's catalog query that
    // Laminar answers with a rewritten one (see `exec::introspection`) may use fewer of the
    // values the tool sends.
    let expected = logical
        .get_parameter_types()?
        .keys()
        .filter_map(|id| id.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    if expected == 0 {
        return Ok(logical);
    }
    if params.len() < expected {
        return Err(EngineError::InvalidParameter(format!(
            "the statement has {expected} parameter(s) ($1, ...) but {} value(s) were given",
            params.len()
        )));
    }
    Ok(logical.with_param_values(params[..expected].to_vec())?)
}

impl Engine {
    /// The types of a query's `$n` parameters (in order; `None` where nothing constrains
    /// one) and its result columns, for the extended protocol's Describe.
    pub async fn describe_parameters(
        &self,
        session: &Session,
        statement: &Statement,
    ) -> Result<(Vec<Option<arrow::datatypes::DataType>>, SchemaRef)> {
        let ctx = session_context(session);
        if catalog_use(statement) == CatalogUse::Reads {
            self.refresh_introspection().await?;
        }
        self.introspection()?.install(&ctx, session.settings())?;
        let mut statement = statement.clone();
        postgres_column_names(&mut statement);
        postgres_literals(&mut statement);
        let df_statement = DfStatement::Statement(Box::new(statement));
        let counters = Arc::new(Counters::default());
        self.register_statement_tables(&ctx, session, &df_statement, None, &counters)
            .await?;
        let logical = ctx.state().statement_to_plan(df_statement).await?;
        let mut types = logical.get_parameter_types()?;
        // Where DataFusion leaves a type open, PostgreSQL's rules decide (see below).
        for (id, data_type) in context_parameter_types(&logical) {
            if let Some(slot @ None) = types.get_mut(&id) {
                *slot = Some(data_type);
            }
        }
        // By position: `$n` is slot n - 1, and a `$n` the query does not use has no type.
        let mut ordered: Vec<Option<arrow::datatypes::DataType>> = Vec::new();
        for (id, data_type) in types {
            let Some(n) = id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) else {
                continue;
            };
            if n == 0 {
                continue;
            }
            if ordered.len() < n {
                ordered.resize(n, None);
            }
            ordered[n - 1] = data_type;
        }
        let schema = Arc::new(logical.schema().as_arrow().clone());
        Ok((ordered, schema))
    }
}

/// How deep views may nest.
const MAX_VIEW_DEPTH: usize = 16;

/// Parse a stored view query.
fn view_statement(query: &str) -> Result<Statement> {
    match parse_sql(query)?.pop() {
        Some(LaminarStatement::Sql(statement)) if matches!(*statement, Statement::Query(_)) => {
            Ok(*statement)
        }
        _ => Err(EngineError::InvalidParameter(format!(
            "stored view query is not a SELECT: {query}"
        ))),
    }
}

/// DataFusion refuses blocking operators over unbounded input; say what that means here.
fn explain_pipeline_breakers(e: datafusion::error::DataFusionError) -> EngineError {
    let text = e.to_string();
    if text.contains("pipeline breaking") {
        EngineError::Unsupported(
            "this query needs to see the whole stream before producing output (an aggregate, ORDER BY or window without an end); \
             over an unbounded source, group by a window instead: GROUP BY tumble(INTERVAL '1' MINUTE), hop(...) or session(...)"
                .into(),
        )
    } else {
        e.into()
    }
}
