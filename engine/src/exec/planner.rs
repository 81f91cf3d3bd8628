//! From a SQL statement to a physical plan over connector tables.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use connectors::TableRole;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Statement, TableObject};

use crate::Engine;
use crate::ddl::ResolvedTable;
use crate::error::{EngineError, Result};
use crate::exec::filter::use_streaming_filters;
use crate::exec::sink::SinkTable;
use crate::exec::source::ConnectorPartition;
use crate::metrics::Counters;
use crate::session::Session;
use crate::sql::parse::normalize_name;

/// A statement planned and ready to execute.
pub struct Planned {
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

fn session_context(session: &Session) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(session.batch_size)
        .with_information_schema(false);
    let options = config.options_mut();
    options.sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    options.execution.coalesce_batches = false;
    SessionContext::new_with_config(config)
}

impl Engine {
    /// Plan a query, `INSERT` or `EXPLAIN` against the catalog's tables.
    pub async fn plan(&self, session: &Session, statement: &Statement) -> Result<Planned> {
        let ctx = session_context(session);
        let df_statement = DfStatement::Statement(Box::new(statement.clone()));
        let references = ctx.state().resolve_table_references(&df_statement)?;
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
        let mut tables = Vec::new();
        for reference in references {
            let name = reference.table().to_string();
            if tables.contains(&name) {
                continue;
            }
            let table = self.resolve_table(&name).await?;
            let is_target = insert_target.as_deref() == Some(name.as_str());
            self.register(&ctx, session, table, is_target, &counters)?;
            tables.push(name);
        }
        let logical = ctx.state().statement_to_plan(df_statement).await?;
        let physical = ctx
            .state()
            .create_physical_plan(&logical)
            .await
            .map_err(explain_pipeline_breakers)?;
        let plan = use_streaming_filters(physical)?;
        Ok(Planned {
            plan,
            task_ctx: ctx.task_ctx(),
            counters,
            tables,
            sink: insert_target,
        })
    }

    fn register(
        &self,
        ctx: &SessionContext,
        session: &Session,
        table: ResolvedTable,
        is_insert_target: bool,
        counters: &Arc<Counters>,
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
                let bounded = table.connector.bounded(&table.def.config)?;
                let partitions = session.parallelism.max(1);
                let streams: Vec<Arc<dyn PartitionStream>> = (0..partitions)
                    .map(|p| {
                        Arc::new(ConnectorPartition::new(
                            table.clone(),
                            p,
                            partitions,
                            session.batch_size,
                            counters.clone(),
                        )) as Arc<dyn PartitionStream>
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

/// DataFusion refuses blocking operators over unbounded input; say what that means here.
fn explain_pipeline_breakers(e: datafusion::error::DataFusionError) -> EngineError {
    let text = e.to_string();
    if text.contains("pipeline breaking") {
        EngineError::Unsupported(
            "this query needs to see the whole stream before producing output (an aggregate, ORDER BY or window without an end); \
             over unbounded sources it needs a windowed GROUP BY, which is not supported yet"
                .into(),
        )
    } else {
        e.into()
    }
}
