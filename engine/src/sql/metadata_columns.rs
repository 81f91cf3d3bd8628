//! `col TYPE METADATA FROM 'key'` inside `CREATE TABLE`'s column list (Flink's and Arroyo's
//! spelling of a column filled from a record's envelope: Kafka's key, offset, ...).
//!
//! sqlparser has no grammar for it, so the clause is cut out of the token stream before
//! parsing and becomes the table option `metadata.<col> = '<key>'`, which is how REST says
//! the same; the connector checks the key.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{EngineError, Result};

/// Columns declared `METADATA FROM`: (column, key).
pub type MetadataColumns = Vec<(String, String)>;

fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.value.eq_ignore_ascii_case(word))
}

/// Remove every `METADATA FROM '<key>' [VIRTUAL]` of the first parenthesised list and say
/// which column each belonged to.
pub fn extract(tokens: &mut Vec<TokenWithSpan>) -> Result<MetadataColumns> {
    let mut found = Vec::new();
    let mut depth = 0;
    let mut element_start = None;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].token {
            Token::LParen => {
                depth += 1;
                if depth == 1 && element_start.is_none() {
                    element_start = Some(i + 1);
                }
            }
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Token::Comma if depth == 1 => element_start = Some(i + 1),
            token if depth == 1 && is_word(token, "METADATA") => {
                let meaningful: Vec<usize> = (i + 1..tokens.len())
                    .filter(|&j| !matches!(tokens[j].token, Token::Whitespace(_)))
                    .take(3)
                    .collect();
                let from = meaningful.first().copied();
                let key = meaningful.get(1).copied();
                let (Some(from), Some(key)) = (from, key) else {
                    return Err(usage());
                };
                if !is_word(&tokens[from].token, "FROM") {
                    return Err(usage());
                }
                let Token::SingleQuotedString(key_text) = &tokens[key].token else {
                    return Err(usage());
                };
                let column = element_start
                    .and_then(|s| {
                        tokens[s..i]
                            .iter()
                            .find(|t| !matches!(t.token, Token::Whitespace(_)))
                    })
                    .and_then(|t| match &t.token {
                        Token::Word(w) if w.quote_style.is_some() => Some(w.value.clone()),
                        Token::Word(w) => Some(w.value.to_ascii_lowercase()),
                        _ => None,
                    })
                    .ok_or_else(usage)?;
                found.push((column, key_text.clone()));
                let mut end = key + 1;
                if let Some(&virtual_at) = meaningful.get(2)
                    && is_word(&tokens[virtual_at].token, "VIRTUAL")
                {
                    end = virtual_at + 1;
                }
                tokens.drain(i..end);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(found)
}

fn usage() -> EngineError {
    EngineError::Syntax("expected <column> <type> METADATA FROM '<key>' [VIRTUAL]".into())
}

/// Record the metadata columns as `metadata.<col>` options of the `CREATE TABLE`.
pub fn apply(statement: &mut Statement, columns: MetadataColumns) -> Result<()> {
    let options = columns
        .into_iter()
        .map(|(column, key)| (format!("metadata.{column}"), key))
        .collect();
    super::watermark::add_table_options(statement, "METADATA FROM", options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    #[test]
    fn clauses_are_cut_out_and_named() {
        let sql = "CREATE TABLE t (id BIGINT, k TEXT METADATA FROM 'key', \"Off\" BIGINT METADATA FROM 'offset' VIRTUAL) WITH (a = 'b')";
        let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        let found = extract(&mut tokens).unwrap();
        assert_eq!(
            found,
            vec![
                ("k".to_string(), "key".to_string()),
                ("Off".to_string(), "offset".to_string())
            ]
        );
        let text: String = tokens.iter().map(|t| t.token.to_string()).collect();
        assert_eq!(
            text,
            "CREATE TABLE t (id BIGINT, k TEXT , \"Off\" BIGINT ) WITH (a = 'b')"
        );
        let mut bad = Tokenizer::new(
            &PostgreSqlDialect {},
            "CREATE TABLE t (k TEXT METADATA 'key')",
        )
        .tokenize_with_location()
        .unwrap();
        assert!(extract(&mut bad).is_err());
    }
}
