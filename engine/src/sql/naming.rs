//! Output column names as PostgreSQL gives them.
//!
//! PostgreSQL names a selected column reference after its last identifier: `SELECT t.a` gives
//! `a`, and `SELECT bid.price FROM nexmark` gives `price`. DataFusion would name the latter
//! `nexmark.bid[price]`, which breaks views that select struct fields (the Nexmark suite's
//! `CREATE VIEW bid AS SELECT bid.auction, ... FROM datagen`). Compound references are given
//! that alias explicitly, unless it would repeat a name already in the select list.

use std::collections::HashSet;

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
        }
    }
    set_expr_names(&mut query.body);
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
            let mut seen: HashSet<String> = taken.into_iter().collect();
            let implicit_names: Vec<Option<String>> = select
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::UnnamedExpr(expr) => implicit_name(expr),
                    _ => None,
                })
                .collect();
            // Only alias when every implicit name is unique in the list.
            let mut unique = true;
            for name in implicit_names.iter().flatten() {
                if !seen.insert(name.clone()) {
                    unique = false;
                }
            }
            if unique {
                for item in &mut select.projection {
                    if let SelectItem::UnnamedExpr(expr) = item
                        && let Some(name) = implicit_name(expr)
                    {
                        *item = SelectItem::ExprWithAlias {
                            expr: expr.clone(),
                            alias: Ident::new(name),
                        };
                    }
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
/// differently: the last part of a compound reference, or a function call's name
/// (`count(*)` is `count`, `current_setting('x')` is `current_setting`).
fn implicit_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            parts.last().map(|p| p.value.to_ascii_lowercase())
        }
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.to_ascii_lowercase()),
        _ => None,
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
            "SELECT bid.auction AS auction, nx.bid.price AS price FROM nx"
        );
        // Duplicates stay as they are (DataFusion keeps them apart by qualifier).
        assert_eq!(
            named("SELECT a.id, b.id FROM a, b"),
            "SELECT a.id, b.id FROM a, b"
        );
        assert_eq!(
            named("SELECT * FROM (SELECT t.x FROM t) AS s"),
            "SELECT * FROM (SELECT t.x AS x FROM t) AS s"
        );
    }
}
