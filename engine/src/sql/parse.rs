//! Parse SQL text into statements.
//!
//! sqlparser (PostgreSQL dialect) parses standard SQL. Laminar's own statements —
//! `CREATE CONNECTION PROFILE`, `CREATE PIPELINE`, `START | STOP | DROP PIPELINE`,
//! `DROP CONNECTION PROFILE`, `SHOW PIPELINES | CONNECTION PROFILES | JOBS`, `SUBSCRIBE` — are
//! recognised
//! from their leading words and parsed with the same parser's building blocks, so every
//! statement goes through one tokenizer.

use datafusion::sql::sqlparser::ast::{ObjectName, SqlOption, Statement};
use datafusion::sql::sqlparser::dialect::{GenericDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::error::{EngineError, Result};
use crate::exec::introspection::{CatalogUse, catalog_use, rewrite_catalog_query};
use crate::sql::naming::keep_column_names;

/// What to do with a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineAction {
    Start,
    Stop,
    Drop,
}

/// One parsed statement.
#[derive(Debug, Clone)]
pub enum LaminarStatement {
    /// Any statement sqlparser understands.
    Sql(Box<Statement>),
    /// `CREATE CONNECTION PROFILE name WITH (...)`.
    CreateProfile {
        name: String,
        if_not_exists: bool,
        options: Vec<SqlOption>,
    },
    /// `DROP CONNECTION PROFILE [IF EXISTS] name`.
    DropProfile { name: String, if_exists: bool },
    /// `CREATE PIPELINE name AS INSERT INTO ...`.
    CreatePipeline {
        name: String,
        insert: Box<Statement>,
    },
    /// `START | STOP | DROP PIPELINE [IF EXISTS] name`.
    Pipeline {
        action: PipelineAction,
        name: String,
        if_exists: bool,
    },
    /// `SHOW PIPELINES`.
    ShowPipelines,
    /// `SHOW CONNECTION PROFILES`.
    ShowProfiles,
    /// `SHOW JOBS`.
    ShowJobs,
    /// `SHOW CONNECTORS`.
    ShowConnectors,
    /// `SUBSCRIBE [TO] <materialized view> | (<query>) [WITH (PROGRESS)]`.
    Subscribe(Subscribe),
    /// `FETCH ... WITH (timeout = '1s')`: return what arrives within the timeout
    /// (Materialize's spelling; a `FETCH` without options is sqlparser's).
    FetchWithTimeout {
        fetch: Box<Statement>,
        timeout: std::time::Duration,
    },
    /// `MOVE [n] [FROM | IN] cursor`: a `FETCH` (this one) whose rows are skipped.
    Move(Box<Statement>),
    /// `DECLARE name CURSOR [WITH HOLD] FOR SUBSCRIBE ...` (cursors over queries are
    /// sqlparser's `DECLARE`).
    DeclareSubscribe {
        name: String,
        hold: bool,
        subscribe: Subscribe,
    },
}

/// A `SUBSCRIBE`: what it streams and how.
#[derive(Debug, Clone)]
pub struct Subscribe {
    pub target: SubscribeTarget,
    /// `WITH (PROGRESS)`: timestamp every row and send progress rows while idle
    /// (Materialize's spelling).
    pub progress: bool,
}

/// What `SUBSCRIBE` streams.
#[derive(Debug, Clone)]
pub enum SubscribeTarget {
    View(String),
    Query(Box<Statement>),
}

fn syntax(e: impl std::fmt::Display) -> EngineError {
    EngineError::Syntax(
        e.to_string()
            .trim_start_matches("sql parser error: ")
            .to_string(),
    )
}

/// Parse one or more `;`-separated statements.
pub fn parse_sql(sql: &str) -> Result<Vec<LaminarStatement>> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(syntax)?;
    let mut statements = Vec::new();
    for chunk in split_statements(tokens) {
        statements.push(parse_one(&dialect, chunk)?);
    }
    Ok(statements)
}

/// Split on top-level semicolons, dropping empty statements.
fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0i32;
    for token in tokens {
        match &token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                if has_content(&current) {
                    out.push(std::mem::take(&mut current));
                } else {
                    current.clear();
                }
                continue;
            }
            _ => {}
        }
        current.push(token);
    }
    if has_content(&current) {
        out.push(current);
    }
    out
}

fn has_content(tokens: &[TokenWithSpan]) -> bool {
    tokens
        .iter()
        .any(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
}

/// The first few words of a statement, upper-cased.
fn leading_words(tokens: &[TokenWithSpan], n: usize) -> Vec<String> {
    tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .take(n)
        .map(|t| match &t.token {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            other => other.to_string(),
        })
        .collect()
}

fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
            Some(ident) => ident.value.to_ascii_lowercase(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The catalog name for a SQL object name (unquoted parts are lower-cased).
pub fn normalize_name(name: &ObjectName) -> String {
    object_name(name)
}

/// `DECLARE name [NO SCROLL] CURSOR [WITH HOLD | WITHOUT HOLD] FOR SUBSCRIBE ...`, or
/// `None` when the cursor is over anything else.
fn declare_subscribe(
    dialect: &PostgreSqlDialect,
    tokens: &[TokenWithSpan],
) -> Result<Option<LaminarStatement>> {
    let words: Vec<(usize, String)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, t)| match &t.token {
            Token::Word(w) => (i, w.value.to_ascii_uppercase()),
            other => (i, other.to_string()),
        })
        .collect();
    let Some(for_at) = words.iter().position(|(_, w)| w == "FOR") else {
        return Ok(None);
    };
    if words.get(for_at + 1).map(|(_, w)| w.as_str()) != Some("SUBSCRIBE") {
        return Ok(None);
    }
    let head: Vec<&str> = words[1..for_at].iter().map(|(_, w)| w.as_str()).collect();
    let (name, rest) = match head.split_first() {
        Some((_, rest)) => (&tokens[words[1].0], rest),
        None => return Err(EngineError::Syntax("DECLARE needs a cursor name".into())),
    };
    let name = match &name.token {
        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
        Token::Word(w) => w.value.to_ascii_lowercase(),
        other => {
            return Err(EngineError::Syntax(format!(
                "expected a cursor name after DECLARE, found '{other}'"
            )));
        }
    };
    let hold = match rest {
        ["CURSOR"] | ["NO", "SCROLL", "CURSOR"] | ["CURSOR", "WITHOUT", "HOLD"] => false,
        ["CURSOR", "WITH", "HOLD"] | ["NO", "SCROLL", "CURSOR", "WITH", "HOLD"] => true,
        _ => {
            return Err(EngineError::Syntax(
                "expected DECLARE <name> [NO SCROLL] CURSOR [WITH HOLD] FOR SUBSCRIBE ...".into(),
            ));
        }
    };
    match parse_one(dialect, tokens[words[for_at + 1].0..].to_vec())? {
        LaminarStatement::Subscribe(subscribe) => Ok(Some(LaminarStatement::DeclareSubscribe {
            name,
            hold,
            subscribe,
        })),
        _ => Ok(None),
    }
}

/// `SUBSCRIBE`'s options: `WITH (PROGRESS [= true | false])`.
fn subscribe_progress(parser: &mut Parser<'_>) -> Result<bool> {
    if !parser.parse_keyword(Keyword::WITH) {
        return Ok(false);
    }
    parser.expect_token(&Token::LParen).map_err(syntax)?;
    let mut progress;
    loop {
        let option = parser.parse_identifier().map_err(syntax)?;
        if !option.value.eq_ignore_ascii_case("progress") {
            return Err(EngineError::InvalidParameter(format!(
                "unknown SUBSCRIBE option '{}': valid options are PROGRESS",
                option.value
            )));
        }
        progress = if parser.consume_token(&Token::Eq) {
            match parser.next_token().token {
                Token::Word(w) if w.value.eq_ignore_ascii_case("true") => true,
                Token::Word(w) if w.value.eq_ignore_ascii_case("false") => false,
                other => {
                    return Err(EngineError::InvalidParameter(format!(
                        "invalid value '{other}' for SUBSCRIBE option PROGRESS: expected true or false"
                    )));
                }
            }
        } else {
            true
        };
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen).map_err(syntax)?;
    Ok(progress)
}

/// `FETCH ... WITH (timeout = '<duration>')`, or `None` without a `WITH`.
fn fetch_with_timeout(
    dialect: &PostgreSqlDialect,
    tokens: &[TokenWithSpan],
) -> Result<Option<LaminarStatement>> {
    let Some(with_at) = tokens
        .iter()
        .position(|t| matches!(&t.token, Token::Word(w) if w.keyword == Keyword::WITH))
    else {
        return Ok(None);
    };
    let mut options = Parser::new(dialect).with_tokens_with_locations(tokens[with_at..].to_vec());
    let options =
        crate::sql::options::with_options(&options.parse_options(Keyword::WITH).map_err(syntax)?)?;
    let mut timeout = None;
    for (key, value) in options {
        match key.as_str() {
            "timeout" => {
                timeout = Some(connectors::options::parse_duration(&value).ok_or_else(|| {
                    EngineError::InvalidParameter(format!(
                        "invalid FETCH timeout '{value}': expected {}",
                        connectors::options::DURATION_EXPECTED
                    ))
                })?);
            }
            other => {
                return Err(EngineError::InvalidParameter(format!(
                    "unknown FETCH option '{other}'; FETCH takes WITH (timeout = '<duration>')"
                )));
            }
        }
    }
    let fetch = Parser::new(dialect)
        .with_tokens_with_locations(tokens[..with_at].to_vec())
        .parse_statement()
        .map_err(syntax)?;
    match timeout {
        Some(timeout) => Ok(Some(LaminarStatement::FetchWithTimeout {
            fetch: Box::new(fetch),
            timeout,
        })),
        None => Ok(None),
    }
}

/// `FETCH -1` / `MOVE -1` (which sqlparser cannot read): say why it is refused.
fn forward_only(command: &str, tokens: &[TokenWithSpan]) -> Result<()> {
    let mut words = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .skip(1);
    let next = match words.next() {
        Some(t) if matches!(&t.token, Token::Word(w) if w.keyword == Keyword::FORWARD) => {
            words.next()
        }
        other => other,
    };
    if next.is_some_and(|t| t.token == Token::Minus) {
        return Err(EngineError::Unsupported(format!(
            "{command} with a negative count is not supported: cursors over streams only move forward"
        )));
    }
    Ok(())
}

/// `MOVE ...` read as the `FETCH ...` with the same direction and cursor (sqlparser has no
/// MOVE).
fn move_cursor(
    dialect: &PostgreSqlDialect,
    mut tokens: Vec<TokenWithSpan>,
) -> Result<LaminarStatement> {
    if let Some(first) = tokens
        .iter_mut()
        .find(|t| !matches!(t.token, Token::Whitespace(_)))
    {
        first.token = Token::make_keyword("FETCH");
    }
    match Parser::new(dialect)
        .with_tokens_with_locations(tokens)
        .parse_statement()
        .map_err(syntax)?
    {
        fetch @ Statement::Fetch { .. } => Ok(LaminarStatement::Move(Box::new(fetch))),
        _ => Err(EngineError::Syntax(
            "expected MOVE [n] [FROM | IN] <cursor>".into(),
        )),
    }
}

fn parse_one(
    dialect: &PostgreSqlDialect,
    mut tokens: Vec<TokenWithSpan>,
) -> Result<LaminarStatement> {
    let words = leading_words(&tokens, 3);
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or_default();
    let (watermark, metadata_columns) = if word(0) == "CREATE" {
        (
            super::watermark::extract(&mut tokens)?,
            super::metadata_columns::extract(&mut tokens)?,
        )
    } else {
        (None, Vec::new())
    };
    if word(0) == "DECLARE"
        && let Some(declare) = declare_subscribe(dialect, &tokens)?
    {
        return Ok(declare);
    }
    if matches!(word(0), "FETCH" | "MOVE") {
        forward_only(word(0), &tokens)?;
        // `FETCH FORWARD FROM c` is `FETCH NEXT FROM c`; sqlparser wants a count after FORWARD.
        if matches!(word(1), "FORWARD") && matches!(word(2), "FROM" | "IN") {
            let forward = tokens
                .iter()
                .enumerate()
                .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
                .nth(1)
                .map(|(i, _)| i);
            if let Some(i) = forward {
                tokens[i].token = Token::make_keyword("NEXT");
            }
        }
    }
    if word(0) == "FETCH"
        && let Some(fetch) = fetch_with_timeout(dialect, &tokens)?
    {
        return Ok(fetch);
    }
    if word(0) == "MOVE" {
        return move_cursor(dialect, tokens);
    }
    // sqlparser reads COPY FROM STDIN's data inline and fails on its absence; say what is
    // supported instead.
    if word(0) == "COPY"
        && tokens
            .iter()
            .any(|t| matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case("STDIN")))
    {
        return Err(EngineError::Unsupported(
            "COPY ... FROM STDIN is not supported; Laminar supports COPY (<query>) TO STDOUT and COPY <table> TO STDOUT".into(),
        ));
    }
    // Catalog queries are rewritten from their own text (see `rewrite_catalog_query`).
    let query_text = matches!(word(0), "SELECT" | "WITH" | "(").then(|| {
        tokens
            .iter()
            .map(|t| match &t.token {
                // Comments go: the text is re-read with its whitespace collapsed.
                Token::Whitespace(
                    Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
                ) => " ".to_string(),
                other => other.to_string(),
            })
            .collect::<String>()
    });
    // Kept for a second attempt at CREATE TABLE (see below).
    let create_tokens = (word(0) == "CREATE").then(|| tokens.clone());
    let mut parser = Parser::new(dialect).with_tokens_with_locations(tokens);
    let skip = |parser: &mut Parser<'_>, n: usize| {
        for _ in 0..n {
            parser.next_token();
        }
    };
    let mut statement = match (word(0), word(1), word(2)) {
        ("CREATE", "CONNECTION", "PROFILE") => {
            skip(&mut parser, 3);
            let if_not_exists =
                parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = object_name(&parser.parse_object_name(false).map_err(syntax)?);
            let options = parser.parse_options(Keyword::WITH).map_err(syntax)?;
            LaminarStatement::CreateProfile {
                name,
                if_not_exists,
                options,
            }
        }
        ("DROP", "CONNECTION", "PROFILE") => {
            skip(&mut parser, 3);
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = object_name(&parser.parse_object_name(false).map_err(syntax)?);
            LaminarStatement::DropProfile { name, if_exists }
        }
        ("CREATE", "PIPELINE", _) => {
            skip(&mut parser, 2);
            let name = object_name(&parser.parse_object_name(false).map_err(syntax)?);
            parser.expect_keyword_is(Keyword::AS).map_err(syntax)?;
            let insert = parser.parse_statement().map_err(syntax)?;
            if !matches!(insert, Statement::Insert(_)) {
                return Err(EngineError::Syntax(
                    "CREATE PIPELINE expects AS INSERT INTO <sink> SELECT ...".into(),
                ));
            }
            LaminarStatement::CreatePipeline {
                name,
                insert: Box::new(insert),
            }
        }
        (verb @ ("START" | "STOP" | "DROP"), "PIPELINE", _) => {
            let action = match verb {
                "START" => PipelineAction::Start,
                "STOP" => PipelineAction::Stop,
                _ => PipelineAction::Drop,
            };
            skip(&mut parser, 2);
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = object_name(&parser.parse_object_name(false).map_err(syntax)?);
            LaminarStatement::Pipeline {
                action,
                name,
                if_exists,
            }
        }
        ("SHOW", "PIPELINES", _) => {
            skip(&mut parser, 2);
            LaminarStatement::ShowPipelines
        }
        ("SHOW", "JOBS", _) => {
            skip(&mut parser, 2);
            LaminarStatement::ShowJobs
        }
        ("SUBSCRIBE", _, _) => {
            skip(&mut parser, 1);
            let _ = parser.parse_keyword(Keyword::TO);
            let target = if parser.consume_token(&Token::LParen) {
                let query = parser.parse_query().map_err(syntax)?;
                parser.expect_token(&Token::RParen).map_err(syntax)?;
                SubscribeTarget::Query(Box::new(Statement::Query(query)))
            } else {
                let name = object_name(&parser.parse_object_name(false).map_err(syntax)?);
                SubscribeTarget::View(name)
            };
            let progress = subscribe_progress(&mut parser)?;
            LaminarStatement::Subscribe(Subscribe { target, progress })
        }
        ("SHOW", "CONNECTORS", _) => {
            skip(&mut parser, 2);
            LaminarStatement::ShowConnectors
        }
        ("SHOW", "CONNECTION", "PROFILES") => {
            skip(&mut parser, 3);
            LaminarStatement::ShowProfiles
        }
        _ => match (parser.parse_statement(), create_tokens) {
            (Ok(statement), _) => {
                let statement = match (&query_text, catalog_use(&statement)) {
                    (Some(text), CatalogUse::Reads | CatalogUse::NoTables) => {
                        // A rule that cannot handle it leaves the statement as parsed.
                        match rewrite_catalog_query(text) {
                            Ok(mut rewritten) => {
                                keep_column_names(&statement, &mut rewritten);
                                rewritten
                            }
                            Err(_) => statement,
                        }
                    }
                    _ => statement,
                };
                LaminarStatement::Sql(Box::new(statement))
            }
            // The PostgreSQL dialect has no STRUCT<...> column type; the generic dialect does.
            (Err(first), Some(tokens)) => {
                let mut generic =
                    Parser::new(&GenericDialect {}).with_tokens_with_locations(tokens);
                match generic.parse_statement() {
                    Ok(statement @ Statement::CreateTable(_)) => {
                        parser = generic;
                        LaminarStatement::Sql(Box::new(statement))
                    }
                    _ => return Err(syntax(first)),
                }
            }
            (Err(e), None) => return Err(syntax(e)),
        },
    };
    // Anything left over is a syntax error, not silently ignored.
    let rest = parser.peek_token();
    if rest.token != Token::EOF {
        return Err(EngineError::Syntax(format!(
            "unexpected '{}' at line {}, column {}",
            rest.token, rest.span.start.line, rest.span.start.column
        )));
    }
    if !metadata_columns.is_empty() {
        let LaminarStatement::Sql(statement) = &mut statement else {
            return Err(EngineError::Syntax(
                "METADATA FROM is only allowed in CREATE TABLE".into(),
            ));
        };
        super::metadata_columns::apply(statement, metadata_columns)?;
    }
    match (statement, watermark) {
        (LaminarStatement::Sql(mut statement), Some(clause)) => {
            super::watermark::apply(&mut statement, clause)?;
            Ok(LaminarStatement::Sql(statement))
        }
        (_, Some(_)) => Err(EngineError::Syntax(
            "WATERMARK FOR is only allowed in CREATE TABLE".into(),
        )),
        (statement, None) => Ok(statement),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laminar_statements() {
        let parsed = parse_sql(
            "CREATE CONNECTION PROFILE k WITH (connector = 'kafka', bootstrap_servers = 'x:9092'); \
             CREATE PIPELINE p AS INSERT INTO out SELECT * FROM src; STOP PIPELINE p; \
             SHOW PIPELINES; SHOW CONNECTION PROFILES; DROP CONNECTION PROFILE IF EXISTS k;",
        )
        .unwrap();
        assert_eq!(parsed.len(), 6);
        assert!(
            matches!(&parsed[0], LaminarStatement::CreateProfile { name, options, .. } if name == "k" && options.len() == 2)
        );
        assert!(matches!(&parsed[1], LaminarStatement::CreatePipeline { name, .. } if name == "p"));
        assert!(matches!(
            &parsed[2],
            LaminarStatement::Pipeline {
                action: PipelineAction::Stop,
                ..
            }
        ));
        assert!(matches!(parsed[3], LaminarStatement::ShowPipelines));
        assert!(matches!(parsed[4], LaminarStatement::ShowProfiles));
        assert!(matches!(
            &parsed[5],
            LaminarStatement::DropProfile {
                if_exists: true,
                ..
            }
        ));
    }

    #[test]
    fn standard_sql_and_errors() {
        let parsed = parse_sql("SELECT 1; ;").unwrap();
        assert_eq!(parsed.len(), 1);
        assert!(parse_sql("SELEC 1").is_err());
        assert!(parse_sql("STOP PIPELINE p extra").is_err());
        let parsed = parse_sql("DECLARE _psql_cursor NO SCROLL CURSOR FOR\nSELECT 1;").unwrap();
        assert!(
            matches!(&parsed[0], LaminarStatement::Sql(s) if matches!(**s, Statement::Declare { .. }))
        );
    }
}
