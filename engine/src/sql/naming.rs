//! Output column names as PostgreSQL gives them.
//!
//! PostgreSQL names a selected column reference after its last identifier: `SELECT t.a` gives
//! `a`, and `SELECT bid.price FROM nexmark` gives `price`. DataFusion would name the latter
//! `nexmark.bid[price]`, which breaks views that select struct fields (the Nexmark suite's
//! `CREATE VIEW bid AS SELECT bid.auction, ... FROM datagen`). Compound references are given
//! that alias explicitly, unless it would repeat a name already in the select list.

use std::collections::HashMap;

/// PostgreSQL repeats a name in a result (`SELECT 1, 2` has two `?column?` columns), but
/// DataFusion's projections need unique names. A repeated output name is planned as the name,
/// this mark and its position, and clients see the name before the mark.
pub const REPEATED_NAME_MARK: char = '\u{1}';

/// The name a client sees for an output column (see [`REPEATED_NAME_MARK`]).
pub fn display_name(name: &str) -> &str {
    name.split(REPEATED_NAME_MARK).next().unwrap_or(name)
}

use datafusion::sql::sqlparser::ast::{
    AccessExpr, ArrayElemTypeDef, DataType, Expr, Ident, Query, Select, SelectItem, SetExpr,
    Statement, TableFactor, TableWithJoins, TimezoneInfo, Value, ValueWithSpan,
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
    if let Some(select) = output_select(statement) {
        repeated_output_names(select);
    }
}

/// Give `rewritten`, a catalog query rewritten from `original`'s text, the column names
/// `original` has: the rewrite may change what names an item (`current_user` becomes
/// `session_user`).
pub fn keep_column_names(original: &Statement, rewritten: &mut Statement) {
    let mut named = original.clone();
    postgres_column_names(&mut named);
    let (Some(named), Some(rewritten)) = (output_select(&mut named), output_select(rewritten))
    else {
        return;
    };
    if named.projection.len() != rewritten.projection.len() {
        return;
    }
    for (name, item) in named.projection.iter().zip(rewritten.projection.iter_mut()) {
        if let (SelectItem::ExprWithAlias { alias, .. }, SelectItem::UnnamedExpr(expr)) =
            (name, &*item)
        {
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: alias.clone(),
            };
        }
    }
}

/// The SELECT that names a query's columns: the first one of a set operation.
fn output_select(statement: &mut Statement) -> Option<&mut Select> {
    fn first(body: &mut SetExpr) -> Option<&mut Select> {
        match body {
            SetExpr::Select(select) => Some(select),
            SetExpr::Query(query) => first(&mut query.body),
            SetExpr::SetOperation { left, .. } => first(left),
            _ => None,
        }
    }
    match statement {
        Statement::Query(query) => first(&mut query.body),
        _ => None,
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
/// is `count`), a cast column's name (`x::text` is `x`), a cast constant's type (`1::int4`
/// is `int4`), `array`, `case`, `exists`, and `?column?` for other expressions (`1 + 1`).
fn implicit_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(_) => None,
        Expr::CompoundIdentifier(parts) if parts.len() < 2 => None,
        // Struct fields (`window.start`) and the like keep DataFusion's names.
        Expr::CompoundFieldAccess { .. } => None,
        _ => Some(figured_name(expr).map_or_else(|| "?column?".to_string(), |(name, _)| name)),
    }
}

/// PostgreSQL's figured column name and how strong it is: a column's or a function's name
/// (2) beats a type's (1), so `x::text` is `x` but `(1 + 1)::text` is `text`.
fn figured_name(expr: &Expr) -> Option<(String, u8)> {
    let named = |name: &str| Some((name.to_ascii_lowercase(), 2));
    match expr {
        Expr::Identifier(ident) => named(&ident.value),
        Expr::CompoundIdentifier(parts) => named(&parts.last()?.value),
        Expr::CompoundFieldAccess { access_chain, .. } => match access_chain.last()? {
            AccessExpr::Dot(Expr::Identifier(field)) => named(&field.value),
            _ => None,
        },
        Expr::Function(function) => named(&function.name.0.last()?.as_ident()?.value),
        Expr::Nested(inner) => figured_name(inner),
        Expr::Cast {
            expr, data_type, ..
        } => figured_name(expr)
            .filter(|(_, strength)| *strength == 2)
            .or_else(|| Some((type_name(data_type), 1))),
        Expr::TypedString(typed) => Some((type_name(&typed.data_type), 1)),
        Expr::Interval(_) => Some(("interval".into(), 1)),
        Expr::Value(ValueWithSpan {
            value: Value::Boolean(_),
            ..
        }) => Some(("bool".into(), 1)),
        Expr::Array(_) => named("array"),
        Expr::Case { .. } => named("case"),
        Expr::Exists { .. } => named("exists"),
        _ => None,
    }
}

/// A type's name as PostgreSQL spells it in a column name (`integer` is `int4`).
fn type_name(data_type: &DataType) -> String {
    let name = match data_type {
        DataType::SmallInt(_) | DataType::Int2(_) => "int2",
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4",
        DataType::BigInt(_) | DataType::Int8(_) => "int8",
        DataType::Real | DataType::Float4 => "float4",
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => "float8",
        DataType::Float(_) => "float8",
        DataType::Bool | DataType::Boolean => "bool",
        DataType::Varchar(_) | DataType::CharacterVarying(_) | DataType::CharVarying(_) => {
            "varchar"
        }
        DataType::Char(_) | DataType::Character(_) => "bpchar",
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => "numeric",
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timestamptz",
        DataType::Timestamp(..) => "timestamp",
        DataType::Time(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timetz",
        DataType::Time(..) => "time",
        DataType::Array(
            ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner),
        ) => return type_name(inner),
        DataType::Custom(name, _) => {
            if let Some(ident) = name.0.last().and_then(|part| part.as_ident()) {
                return ident.value.to_ascii_lowercase();
            }
            return name.to_string().to_ascii_lowercase();
        }
        other => return other.to_string().to_ascii_lowercase(),
    };
    name.to_string()
}

/// Plan the repeated names of a query's result apart (see [`REPEATED_NAME_MARK`]).
fn repeated_output_names(select: &mut Select) {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for (position, item) in select.projection.iter_mut().enumerate() {
        let (expr, name, plain_column) = match &*item {
            SelectItem::ExprWithAlias { expr, alias } => (expr, output_name(alias), false),
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => {
                (&Expr::Identifier(ident.clone()), output_name(ident), true)
            }
            SelectItem::UnnamedExpr(expr) => match implicit_name(expr) {
                Some(name) => (expr, name, false),
                None => continue,
            },
            // A wildcard's names are not known here.
            _ => continue,
        };
        let seen = uses.entry(name.clone()).or_default();
        *seen += 1;
        let alias = match *seen {
            1 if plain_column => continue,
            1 => name,
            _ => format!("{name}{REPEATED_NAME_MARK}{position}"),
        };
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: Ident::with_quote('"', alias),
        };
    }
}

/// An identifier as a column name: folded to lower case unless quoted.
fn output_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
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
        // Both are `id` to the client; the second is planned apart.
        assert_eq!(
            named("SELECT a.id, b.id FROM a, b"),
            "SELECT a.id AS \"id\", b.id AS \"id\u{1}1\" FROM a, b"
        );
        assert_eq!(
            named("SELECT * FROM (SELECT t.x FROM t) AS s"),
            "SELECT * FROM (SELECT t.x AS \"x\" FROM t) AS s"
        );
    }

    #[test]
    fn constants_take_their_type_names() {
        assert_eq!(
            named(
                "SELECT 1::int4, 'a'::text, CAST(2 AS bigint), (1 + 1)::varchar(3), DATE '2024-01-02', true, ARRAY[1], CASE WHEN true THEN 1 END"
            ),
            "SELECT 1::INT4 AS \"int4\", 'a'::TEXT AS \"text\", CAST(2 AS BIGINT) AS \"int8\", (1 + 1)::VARCHAR(3) AS \"varchar\", DATE '2024-01-02' AS \"date\", true AS \"bool\", ARRAY[1] AS \"array\", CASE WHEN true THEN 1 END AS \"case\""
        );
    }

    #[test]
    fn expressions_take_postgres_names() {
        assert_eq!(
            named("SELECT count(*), x::text, 1 + 1, y FROM t"),
            "SELECT count(*) AS \"count\", x::TEXT AS \"x\", 1 + 1 AS \"?column?\", y FROM t"
        );
        // A repeated name is planned apart and shown as written.
        assert_eq!(
            named("SELECT 1, 2, max(a) FROM t"),
            "SELECT 1 AS \"?column?\", 2 AS \"?column?\u{1}1\", max(a) AS \"max\" FROM t"
        );
        assert_eq!(
            named("SELECT x, x::text, current_user, session_user FROM t"),
            "SELECT x, x::TEXT AS \"x\u{1}1\", current_user AS \"current_user\", session_user AS \"session_user\" FROM t"
        );
        // Only the outermost query: a subquery keeps DataFusion's names for repeats.
        assert_eq!(
            named("SELECT * FROM (SELECT 1, 2) AS s"),
            "SELECT * FROM (SELECT 1, 2) AS s"
        );
        assert_eq!(display_name("?column?\u{1}1"), "?column?");
    }
}
