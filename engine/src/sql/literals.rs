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
            parse_sql(r"SELECT '\x0102'::bytea, 'plain'::bytea")
                .unwrap()
                .pop()
        else {
            panic!("not SQL")
        };
        postgres_literals(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT decode('0102', 'hex'), 'plain'::BYTEA"
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
