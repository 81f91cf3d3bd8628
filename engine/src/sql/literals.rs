//! Literals as PostgreSQL reads them, where DataFusion reads them differently.
//!
//! `oid` casts become `integer`, the type OIDs are.
//!
//! `'\x0102'::bytea` is two bytes in PostgreSQL (hex format), but DataFusion's cast from
//! text keeps the six characters. Drivers send bytea values this way (psycopg2 interpolates
//! `bytes` parameters as such literals), so the cast becomes `decode('0102', 'hex')`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, Statement, Value, ValueWithSpan,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrite PostgreSQL-only literal forms in `statement`.
pub fn postgres_literals(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        // OIDs are 4-byte integers (asyncpg's type lookups cast to `oid[]`).
        if let Expr::Cast { data_type, .. } = expr {
            oid_as_integer(data_type);
        }
        if let Expr::Cast {
            kind: CastKind::DoubleColon | CastKind::Cast,
            expr: inner,
            data_type: DataType::Bytea,
            ..
        } = expr
            && let Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text),
                ..
            }) = inner.as_ref()
            && let Some(hex) = text
                .strip_prefix("\\x")
                .or_else(|| text.strip_prefix("\\X"))
        {
            *expr = decode_hex(hex);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Give `$n` placeholders the types a client declared for them in Parse (type names such as
/// `int8`): `SELECT $1` with an int8 parameter is an int8 column, as in PostgreSQL, where
/// DataFusion alone would leave it untyped.
pub fn declared_parameter_types(statement: &mut Statement, types: &[Option<&str>]) {
    if !matches!(statement, Statement::Query(_)) || types.iter().all(Option::is_none) {
        return;
    }
    let dialect = PostgreSqlDialect {};
    let parsed: Vec<Option<DataType>> = types
        .iter()
        .map(|name| {
            let name = (*name)?;
            Parser::new(&dialect)
                .try_with_sql(name)
                .ok()?
                .parse_data_type()
                .ok()
        })
        .collect();
    // Post-order: a placeholder is wrapped once, after its own visit.
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(placeholder),
            ..
        }) = expr
            && let Some(n) = placeholder
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
            && let Some(Some(data_type)) = n.checked_sub(1).and_then(|i| parsed.get(i))
        {
            *expr = Expr::Cast {
                kind: CastKind::DoubleColon,
                expr: Box::new(expr.clone()),
                data_type: data_type.clone(),
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `oid` (and `oid[]`) as `integer`, which DataFusion knows.
fn oid_as_integer(data_type: &mut DataType) {
    match data_type {
        DataType::Custom(name, modifiers)
            if modifiers.is_empty()
                && name
                    .0
                    .last()
                    .and_then(|part| part.as_ident())
                    .is_some_and(|ident| ident.value.eq_ignore_ascii_case("oid")) =>
        {
            *data_type = DataType::Integer(None);
        }
        DataType::Array(ArrayElemTypeDef::SquareBracket(inner, _))
        | DataType::Array(ArrayElemTypeDef::AngleBracket(inner))
        | DataType::Array(ArrayElemTypeDef::Parenthesis(inner)) => oid_as_integer(inner),
        _ => {}
    }
}

/// `decode('<hex>', 'hex')`.
fn decode_hex(hex: &str) -> Expr {
    let text = |s: &str| {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(
            Value::SingleQuotedString(s.to_string()).into(),
        )))
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("decode")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![text(hex), text("hex")],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse::{LaminarStatement, parse_sql};

    #[test]
    fn hex_bytea_literals_decode() {
        let Some(LaminarStatement::Sql(mut statement)) =
            parse_sql(r"SELECT '\x0102'::bytea AS a, 'plain'::bytea AS b")
                .unwrap()
                .pop()
        else {
            panic!("not SQL")
        };
        postgres_literals(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT decode('0102', 'hex') AS a, 'plain'::BYTEA AS b"
        );
    }

    #[test]
    fn declared_parameter_types_cast_placeholders() {
        let Some(LaminarStatement::Sql(mut statement)) =
            parse_sql("SELECT $1, $2 FROM t WHERE x > $1")
                .unwrap()
                .pop()
        else {
            panic!("not SQL")
        };
        declared_parameter_types(&mut statement, &[Some("int8"), None]);
        assert_eq!(
            statement.to_string(),
            "SELECT $1::INT8, $2 FROM t WHERE x > $1::INT8"
        );
    }

    #[test]
    fn oids_are_integers() {
        let Some(LaminarStatement::Sql(mut statement)) =
            parse_sql("SELECT $1::oid[], 5::oid FROM t").unwrap().pop()
        else {
            panic!("not SQL")
        };
        postgres_literals(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT $1::INTEGER[], 5::INTEGER FROM t"
        );
    }
}
