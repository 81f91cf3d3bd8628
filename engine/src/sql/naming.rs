//! Output column names as PostgreSQL gives them.
//!
//! PostgreSQL names a selected column reference after its last identifier: `SELECT t.a` gives
//! `a`, and `SELECT bid.price FROM nexmark` gives `price`. DataFusion would name the latter
//! `nexmark.bid[price]`, which breaks views that select struct fields (the Nexmark suite's
//! `CREATE VIEW bid AS SELECT bid.auction, ... FROM datagen`). Compound references are given
//! that alias explicitly, unless it would repeat a name already in the select list.

use std::collections::HashMap;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Query, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins,
};

/// Apply PostgreSQL column naming to every SELECT in `statement`.
pub fn postgres_column_names(statement: &mut Statement) {
    match statement {
        Statement::Query(query) => query_names(query),
        Statement::Insert(insert) => {
            if let Some(source) = insert.source.as_mut() {
                query_names(source);
            }
        }
        Statement::Explain { statement, .. } => postgres_column_names(statement),
        Statement::CreateView(view) => query_names(&mut view.query),
        _ => {}
    }
}

fn query_names(query: &mut Query) {
    if let Some(with) = query.with.as_mut() {
        for cte in &mut with.cte_tables {
            query_names(&mut cte.query);
            let names: Vec<Ident> = cte.alias.columns.iter().map(|c| c.name.clone()).collect();
            cte_column_names(&mut cte.query.body, &names);
        }
    }
    set_expr_names(&mut query.body);
}

/// `WITH t(a, b) AS (SELECT x, 0 ...)`: name the columns of the CTE's first SELECT `a`,
/// `b` too. DataFusion applies the list to the CTE's result but a recursive CTE's
/// recursive part sees the first SELECT's own names (asyncpg's type lookup reads
/// `tt.depth`).
fn cte_column_names(body: &mut SetExpr, names: &[Ident]) {
    match body {
        SetExpr::Select(select) if select.projection.len() == names.len() => {
            for (item, name) in select.projection.iter_mut().zip(names) {
                let expr = match item {
                    SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                        expr.clone()
                    }
                    // A wildcard's columns are not known here.
                    _ => return,
                };
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: name.clone(),
                };
            }
        }
        SetExpr::SetOperation { left, .. } => cte_column_names(left, names),
        SetExpr::Query(query) => cte_column_names(&mut query.body, names),
        _ => {}
    }
}

fn set_expr_names(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for from in &mut select.from {
                from_names(from);
            }
            let taken: Vec<String> = select
                .projection
                .iter()
                .filter_map(|item| match item {
                    SelectItem::ExprWithAlias { alias, .. } => {
                        Some(alias.value.to_ascii_lowercase())
                    }
                    SelectItem::UnnamedExpr(Expr::Identifier(ident)) => {
                        Some(ident.value.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect();
            let implicit_names: Vec<Option<String>> = select
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(expr) => implicit_name(expr),
                    _ => None,
                })
                .collect();
            // A name given twice stays as DataFusion has it (its projections need unique
            // names; PostgreSQL would repeat the name).
            let mut uses: HashMap<&str, usize> = HashMap::new();
            for name in taken.iter().chain(implicit_names.iter().flatten()) {
                *uses.entry(name.as_str()).or_default() += 1;
            }
            let unique: Vec<Option<String>> = implicit_names
                .iter()
                .map(|name| name.clone().filter(|n| uses.get(n.as_str()) == Some(&1)))
                .collect();
            for (item, name) in select.projection.iter_mut().zip(unique) {
                if let (SelectItem::UnnamedExpr(expr), Some(name)) = (&*item, name) {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        // Quoted: `?column?` is no plain identifier, and the name is final.
                        alias: Ident::with_quote('"', name),
                    };
                }
            }
        }
        SetExpr::Query(query) => query_names(query),
        SetExpr::SetOperation { left, right, .. } => {
            set_expr_names(left);
            set_expr_names(right);
        }
        _ => {}
    }
}

/// The name PostgreSQL gives an unaliased select item that DataFusion would name
/// differently: the last part of a compound reference, a function call's name (`count(*)`
/// is `count`), a cast column's name (`x::text` is `x`), and `?column?` for other
/// expressions (`1 + 1`).
fn implicit_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(_) => None,
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            parts.last().map(|p| p.value.to_ascii_lowercase())
        }
        Expr::CompoundIdentifier(_) => None,
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.to_ascii_lowercase()),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => match expr.as_ref() {
            Expr::Identifier(ident) => Some(ident.value.to_ascii_lowercase()),
            inner => implicit_name(inner),
        },
        // Struct fields (`window.start`) and the like keep DataFusion's names.
        Expr::CompoundFieldAccess { .. } => None,
        _ => Some("?column?".to_string()),
    }
}

fn from_names(from: &mut TableWithJoins) {
    factor_names(&mut from.relation);
    for join in &mut from.joins {
        factor_names(&mut join.relation);
    }
}

fn factor_names(factor: &mut TableFactor) {
    match factor {
        TableFactor::Derived { subquery, .. } => query_names(subquery),
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => from_names(table_with_joins),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::{LaminarStatement, parse_sql};

    fn named(sql: &str) -> String {
        let Some(LaminarStatement::Sql(mut statement)) = parse_sql(sql).unwrap().pop() else {
            panic!("not SQL")
        };
        postgres_column_names(&mut statement);
        statement.to_string()
    }

    #[test]
    fn compound_references_take_their_last_name() {
        assert_eq!(
            named("SELECT bid.auction, nx.bid.price FROM nx"),
            "SELECT bid.auction AS \"auction\", nx.bid.price AS \"price\" FROM nx"
        );
        // Duplicates stay as they are (DataFusion keeps them apart by qualifier).
        assert_eq!(
            named("SELECT a.id, b.id FROM a, b"),
            "SELECT a.id, b.id FROM a, b"
        );
        assert_eq!(
            named("SELECT * FROM (SELECT t.x FROM t) AS s"),
            "SELECT * FROM (SELECT t.x AS \"x\" FROM t) AS s"
        );
    }

    #[test]
    fn expressions_take_postgres_names() {
        assert_eq!(
            named("SELECT count(*), x::text, 1 + 1, y FROM t"),
            "SELECT count(*) AS \"count\", x::TEXT AS \"x\", 1 + 1 AS \"?column?\", y FROM t"
        );
        // A repeated name is left to DataFusion; the others are still named.
        assert_eq!(
            named("SELECT 1, 2, max(a) FROM t"),
            "SELECT 1, 2, max(a) AS \"max\" FROM t"
        );
    }
}
