//! `WITH (...)` options as flat `key → string` maps.

use connectors::options::WithOptions;
use datafusion::sql::sqlparser::ast::{Expr, SqlOption, Value as SqlValue};

use crate::error::{EngineError, Result};

/// Flatten SQL options: keys lower-cased (quoted dotted keys kept whole), values as text.
pub fn with_options(options: &[SqlOption]) -> Result<WithOptions> {
    let mut out = WithOptions::new();
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(EngineError::Syntax(format!(
                "expected key = 'value' in WITH options, found {option}"
            )));
        };
        let name = key.value.to_ascii_lowercase();
        let text = match value {
            Expr::Value(v) => match &v.value {
                SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => s.clone(),
                SqlValue::Number(n, _) => n.clone(),
                SqlValue::Boolean(b) => b.to_string(),
                other => other.to_string(),
            },
            Expr::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        };
        if out.insert(name.clone(), text).is_some() {
            return Err(EngineError::InvalidParameter(format!(
                "option '{name}' is given more than once"
            )));
        }
    }
    Ok(out)
}
