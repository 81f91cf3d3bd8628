//! `WATERMARK FOR col [AS col - INTERVAL '...']` inside `CREATE TABLE`'s column list.
//!
//! sqlparser has no grammar for it, so the clause is cut out of the token stream before
//! parsing and turned into the table options REST uses for the same thing
//! (`event_time_field`, `watermark_delay`): one representation in the catalog.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CreateTableOptions, Expr, Ident, SqlOption, Statement, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{EngineError, Result};

/// A `WATERMARK FOR` clause taken out of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkClause {
    pub column: String,
    /// The delay as text `parse_duration` accepts (`"0"` when there is no expression).
    pub delay: String,
}

fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.value.eq_ignore_ascii_case(word))
}

fn is_space(token: &TokenWithSpan) -> bool {
    matches!(token.token, Token::Whitespace(_))
}

/// Remove a top-level `WATERMARK FOR ...` element of the first parenthesised list.
pub fn extract(tokens: &mut Vec<TokenWithSpan>) -> Result<Option<WatermarkClause>> {
    let mut depth = 0;
    let mut start = None;
    for (i, t) in tokens.iter().enumerate() {
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            token if depth == 1 && is_word(token, "WATERMARK") => {
                let next = tokens[i + 1..].iter().find(|t| !is_space(t));
                if next.is_some_and(|n| is_word(&n.token, "FOR")) {
                    start = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(start) = start else {
        return Ok(None);
    };
    // The clause runs to the next comma or the list's closing parenthesis.
    let mut end = start;
    let mut depth = 0;
    while end < tokens.len() {
        match tokens[end].token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => break,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => break,
            _ => {}
        }
        end += 1;
    }
    let clause: Vec<TokenWithSpan> = tokens[start..end].to_vec();
    // Drop the separating comma: the one after the clause, or else the one before it.
    let (cut_start, cut_end) = if tokens.get(end).is_some_and(|t| t.token == Token::Comma) {
        (start, end + 1)
    } else {
        let before = tokens[..start].iter().rposition(|t| !is_space(t));
        match before {
            Some(b) if tokens[b].token == Token::Comma => (b, end),
            _ => (start, end),
        }
    };
    tokens.drain(cut_start..cut_end);
    parse_clause(clause).map(Some)
}

fn parse_clause(tokens: Vec<TokenWithSpan>) -> Result<WatermarkClause> {
    let usage = "expected WATERMARK FOR <timestamp column> [AS <column> - INTERVAL '<n>' <unit>]";
    let mut parser = Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(tokens);
    parser.next_token(); // WATERMARK
    parser.next_token(); // FOR
    let column = parser
        .parse_identifier()
        .map_err(|e| EngineError::Syntax(format!("{usage}: {e}")))?;
    let column_name = column_name(&column);
    let delay = if parser.parse_keyword(datafusion::sql::sqlparser::keywords::Keyword::AS) {
        let expr = parser
            .parse_expr()
            .map_err(|e| EngineError::Syntax(format!("{usage}: {e}")))?;
        delay_of(&column_name, &expr).ok_or_else(|| {
            EngineError::Unsupported(format!("WATERMARK FOR {column_name} AS {expr}: {usage}"))
        })?
    } else {
        "0".to_string()
    };
    Ok(WatermarkClause {
        column: column_name,
        delay,
    })
}

fn column_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

/// `col` → 0; `col - INTERVAL '5' SECOND` → `5 second`.
fn delay_of(column: &str, expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) if column_name(ident) == column => Some("0".into()),
        Expr::Nested(inner) => delay_of(column, inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Minus,
            right,
        } => {
            delay_of(column, left).filter(|d| d == "0")?;
            let Expr::Interval(interval) = right.as_ref() else {
                return None;
            };
            let Expr::Value(value) = interval.value.as_ref() else {
                return None;
            };
            let text = match &value.value {
                Value::SingleQuotedString(s) | Value::Number(s, _) => s.clone(),
                _ => return None,
            };
            Some(match &interval.leading_field {
                Some(unit) => format!("{text} {unit}"),
                None => text,
            })
        }
        _ => None,
    }
}

/// Put the clause into the statement's `WITH` options.
pub fn apply(statement: &mut Statement, clause: WatermarkClause) -> Result<()> {
    add_table_options(
        statement,
        "WATERMARK FOR",
        vec![
            ("event_time_field".to_string(), clause.column),
            ("watermark_delay".to_string(), clause.delay),
        ],
    )
}

/// Add `key = 'value'` options to a `CREATE TABLE`'s `WITH` list: how clauses that
/// sqlparser cannot read (`WATERMARK FOR`, `METADATA FROM`) reach the catalog. `clause`
/// names the clause for the error on other statements.
pub(crate) fn add_table_options(
    statement: &mut Statement,
    clause: &str,
    added: Vec<(String, String)>,
) -> Result<()> {
    let Statement::CreateTable(create) = statement else {
        return Err(EngineError::Syntax(format!(
            "{clause} is only allowed in CREATE TABLE"
        )));
    };
    let added = added.into_iter().map(|(key, value)| SqlOption::KeyValue {
        // Quoted: a dotted key (`metadata.col`) is one option name.
        key: Ident::with_quote('\'', key),
        value: Expr::value(Value::SingleQuotedString(value)),
    });
    match &mut create.table_options {
        CreateTableOptions::With(options) => options.extend(added),
        other @ CreateTableOptions::None => *other = CreateTableOptions::With(added.collect()),
        other => {
            return Err(EngineError::Syntax(format!(
                "expected WITH (...) options, found {other}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn run(sql: &str) -> (String, Option<WatermarkClause>) {
        let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        let clause = extract(&mut tokens).unwrap();
        let text: String = tokens.iter().map(|t| t.token.to_string()).collect();
        (text, clause)
    }

    #[test]
    fn clause_is_cut_out() {
        let (text, clause) = run(
            "CREATE TABLE t (a INT, ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH (x = '1')",
        );
        assert_eq!(text, "CREATE TABLE t (a INT, ts TIMESTAMP) WITH (x = '1')");
        let clause = clause.unwrap();
        assert_eq!(clause.column, "ts");
        assert_eq!(clause.delay, "5 SECOND");
        let (text, clause) = run("CREATE TABLE t (WATERMARK FOR ts, a INT) WITH (x = '1')");
        assert_eq!(text, "CREATE TABLE t ( a INT) WITH (x = '1')");
        assert_eq!(clause.unwrap().delay, "0");
        let (_, clause) = run("CREATE TABLE t (WATERMARK FOR Ts AS Ts - INTERVAL '2 seconds')");
        assert_eq!(clause.unwrap().delay, "2 seconds");
        assert!(run("CREATE TABLE t (a INT)").1.is_none());
    }

    #[test]
    fn other_expressions_are_refused() {
        let mut tokens = Tokenizer::new(
            &PostgreSqlDialect {},
            "CREATE TABLE t (WATERMARK FOR ts AS now())",
        )
        .tokenize_with_location()
        .unwrap();
        let err = extract(&mut tokens).unwrap_err().to_string();
        assert!(err.contains("WATERMARK FOR ts AS now()"), "{err}");
    }
}
