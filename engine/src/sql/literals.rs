//! Literals as PostgreSQL reads them, where DataFusion reads them differently.
//!
//! `'\x0102'::bytea` is two bytes in PostgreSQL (hex format), but DataFusion's cast from
//! text keeps the six characters. Drivers send bytea values this way (psycopg2 interpolates
//! `bytes` parameters as such literals), so the cast becomes `decode('0102', 'hex')`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArguments, Ident, ObjectName, Statement, Value, ValueWithSpan, visit_expressions_mut,
};

/// Rewrite PostgreSQL-only literal forms in `statement`.
pub fn postgres_literals(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
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
}
