//! `VALUES` lists inside an `INSERT`'s query.
//!
//! DataFusion plans every `VALUES` list of an `INSERT ... SELECT` against the target
//! table's columns (the insert puts the table's schema in its planner context), so
//! `INSERT INTO sink SELECT ... JOIN (VALUES (0, 'zero')) AS s(k, v)` fails, or coerces the
//! list's types, unless the list happens to have the sink's shape. Laminar plans each such
//! list on its own first and reads it as an in-memory table of the statement.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, Query, SetExpr, Statement, TableFactor, VisitMut, VisitorMut,
};

use crate::error::Result;

const PREFIX: &str = "__laminar_values_";

/// A table [`values_as_tables`] registered (not one of the catalog's).
pub fn is_values_table(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// Collects derived tables that are `VALUES` lists, leaving a table name in their place.
struct Lists(Vec<(String, Query)>);

impl VisitorMut for Lists {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Derived {
            subquery, alias, ..
        } = factor
            && matches!(*subquery.body, SetExpr::Values(_))
        {
            let name = format!("{PREFIX}{}", self.0.len() + 1);
            self.0.push((name.clone(), (**subquery).clone()));
            *factor = TableFactor::Table {
                name: ObjectName::from(vec![Ident::new(name)]),
                alias: alias.clone(),
                args: None,
                with_hints: Vec::new(),
                version: None,
                with_ordinality: false,
                partitions: Vec::new(),
                json_path: None,
                sample: None,
                index_hints: Vec::new(),
            };
        }
        ControlFlow::Continue(())
    }
}

/// Turn the `VALUES` derived tables of an `INSERT ... SELECT` into tables registered in
/// `ctx` (an `INSERT ... VALUES` itself is DataFusion's to plan).
pub async fn values_as_tables(ctx: &SessionContext, statement: &mut Statement) -> Result<()> {
    let Statement::Insert(insert) = statement else {
        return Ok(());
    };
    let Some(source) = insert.source.as_mut() else {
        return Ok(());
    };
    if matches!(*source.body, SetExpr::Values(_)) {
        return Ok(());
    }
    let mut lists = Lists(Vec::new());
    let _ = source.visit(&mut lists);
    for (name, query) in lists.0 {
        let query = DfStatement::Statement(Box::new(Statement::Query(Box::new(query))));
        let plan = ctx.state().statement_to_plan(query).await?;
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let rows = frame.collect().await?;
        ctx.register_table(
            name.as_str(),
            Arc::new(MemTable::try_new(schema, vec![rows])?),
        )?;
    }
    Ok(())
}
