//! One way in for connector configuration.
//!
//! SQL `WITH (...)` gives flat, dotted, snake_case keys with string values; REST gives
//! nested JSON with camelCase or snake_case keys and typed values. Both are turned into
//! the same nested, snake_case `serde_json::Value`, checked against the JSON Schema of the
//! target struct (unknown keys get a did-you-mean, missing required keys are named,
//! strings are coerced to the numbers / booleans the schema asks for, with an error naming
//! option, value and expected type), and only then deserialized.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ConnectorError, Result};

/// Flat SQL `WITH` options: lower-cased key → string value, in a stable order.
pub type WithOptions = BTreeMap<String, String>;

/// Turn flat dotted keys into nested objects: `source.offset = 'x'` → `{"source": {"offset": "x"}}`.
pub fn nest(options: &WithOptions) -> Result<Value> {
    let mut root = Map::new();
    for (key, value) in options {
        let mut parts = key.split('.').peekable();
        let mut node = &mut root;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                if node
                    .insert(part.to_string(), Value::String(value.clone()))
                    .is_some()
                {
                    return Err(ConnectorError::Config(format!(
                        "option '{key}' conflicts with another option of the same name"
                    )));
                }
            } else {
                let child = node
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                node = child.as_object_mut().ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "option '{key}' conflicts with option '{part}', which is not a group"
                    ))
                })?;
            }
        }
    }
    Ok(Value::Object(root))
}

/// Recursively rename camelCase object keys to snake_case (`bootstrapServers` → `bootstrap_servers`).
pub fn snake_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (to_snake_case(&k), snake_case_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(snake_case_keys).collect()),
        other => other,
    }
}

/// `bootstrapServers` → `bootstrap_servers`; keys already in snake_case are unchanged.
pub fn to_snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, ch) in key.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// The closest candidate to `key`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    key: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(key, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Format the hint appended to "unknown option" errors.
pub fn hint_for<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> String {
    match did_you_mean(key, candidates.clone()) {
        Some(best) => format!("; did you mean '{best}'?"),
        None => {
            let all: Vec<&str> = candidates.into_iter().collect();
            if all.is_empty() {
                "; this connector takes no options".to_string()
            } else {
                format!("; valid options: {}", all.join(", "))
            }
        }
    }
}

/// A JSON Schema plus the root it was generated in (to resolve `$ref`s).
#[derive(Clone, Copy)]
pub struct SchemaView<'a> {
    root: &'a Value,
    node: &'a Value,
}

impl<'a> SchemaView<'a> {
    /// View the root of a generated schema.
    pub fn new(schema: &'a Schema) -> Self {
        let root = schema.as_value();
        SchemaView { root, node: root }
    }

    fn at(&self, node: &'a Value) -> Self {
        SchemaView {
            root: self.root,
            node,
        }
        .resolved()
    }

    /// Follow `$ref` and pick the non-null branch of `anyOf`/`oneOf` (how `Option<T>` is encoded).
    fn resolved(self) -> Self {
        let mut view = self;
        for _ in 0..8 {
            if let Some(reference) = view.node.get("$ref").and_then(Value::as_str) {
                let name = reference.rsplit('/').next().unwrap_or_default();
                match self.root.get("$defs").and_then(|d| d.get(name)) {
                    Some(target) => view.node = target,
                    None => return view,
                }
            } else if let Some(branches) = view
                .node
                .get("anyOf")
                .or_else(|| view.node.get("oneOf"))
                .and_then(Value::as_array)
                // An enum whose variants are documented is a `oneOf` of constants.
                .filter(|branches| !branches.iter().all(|b| b.get("const").is_some()))
            {
                match branches
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                {
                    Some(branch) => view.node = branch,
                    None => return view,
                }
            } else {
                return view;
            }
        }
        view
    }

    /// Property names of an object schema.
    pub fn properties(&self) -> Vec<&'a str> {
        self.node
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn property(&self, name: &str) -> Option<Self> {
        self.node
            .get("properties")
            .and_then(|p| p.get(name))
            .map(|n| self.at(n))
    }

    fn required(&self) -> Vec<&'a str> {
        self.node
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn types(&self) -> Vec<&'a str> {
        match self.node.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The allowed strings: `enum`, or the constants of a `oneOf` (documented variants).
    fn enum_values(&self) -> Option<Vec<&'a str>> {
        if let Some(values) = self.node.get("enum").and_then(Value::as_array) {
            return Some(values.iter().filter_map(Value::as_str).collect());
        }
        let branches = self.node.get("oneOf").and_then(Value::as_array)?;
        branches
            .iter()
            .map(|b| b.get("const").and_then(Value::as_str))
            .collect()
    }

    fn is_open_map(&self) -> bool {
        matches!(
            self.node.get("additionalProperties"),
            Some(Value::Object(_))
        )
    }
}

/// Check `value` against the schema of `T`, coerce string leaves, and deserialize.
///
/// `connector` and `prefix` are only used to word errors.
pub fn parse_config<T: DeserializeOwned + JsonSchema>(connector: &str, value: Value) -> Result<T> {
    let schema = schemars::schema_for!(T);
    let view = SchemaView::new(&schema);
    let value = if value.is_null() {
        Value::Object(Map::new())
    } else {
        value
    };
    let checked = check(connector, "", view, value)?;
    serde_json::from_value(checked).map_err(|e| ConnectorError::Config(format!("{connector}: {e}")))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn check(connector: &str, path: &str, view: SchemaView<'_>, value: Value) -> Result<Value> {
    let types = view.types();
    match value {
        Value::Object(map) if view.is_open_map() => Ok(Value::Object(map)),
        Value::Object(map) if types.is_empty() || types.contains(&"object") => {
            let props = view.properties();
            let mut out = Map::new();
            for (key, child) in map {
                let Some(child_view) = view.property(&key) else {
                    return Err(ConnectorError::UnknownOption {
                        connector: connector.to_string(),
                        key: join(path, &key),
                        hint: hint_for(&key, props.iter().copied()),
                    });
                };
                let checked = check(connector, &join(path, &key), child_view, child)?;
                out.insert(key, checked);
            }
            for required in view.required() {
                if !out.contains_key(required) {
                    return Err(ConnectorError::MissingOption {
                        connector: connector.to_string(),
                        key: join(path, required),
                    });
                }
            }
            Ok(Value::Object(out))
        }
        Value::String(s) => coerce_string(connector, path, view, s),
        other => Ok(other),
    }
}

fn coerce_string(connector: &str, path: &str, view: SchemaView<'_>, s: String) -> Result<Value> {
    let invalid = |expected: String| ConnectorError::InvalidValue {
        connector: connector.to_string(),
        key: path.to_string(),
        value: s.clone(),
        expected,
    };
    if let Some(allowed) = view.enum_values() {
        return if allowed.contains(&s.as_str()) {
            Ok(Value::String(s))
        } else {
            Err(invalid(format!("one of {}", allowed.join(", "))))
        };
    }
    let types = view.types();
    if types.contains(&"string") || types.is_empty() {
        return Ok(Value::String(s));
    }
    let trimmed = s.trim();
    if types.contains(&"integer") {
        let minimum = view.node.get("minimum").and_then(Value::as_f64);
        let expected = if minimum == Some(0.0) {
            "a non-negative integer"
        } else {
            "an integer"
        };
        return match trimmed.parse::<i64>() {
            Ok(n) if minimum.is_none_or(|m| n as f64 >= m) => Ok(Value::from(n)),
            _ => match trimmed.parse::<u64>() {
                Ok(n) => Ok(Value::from(n)),
                Err(_) => Err(invalid(expected.to_string())),
            },
        };
    }
    if types.contains(&"number") {
        return trimmed
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| invalid("a number".to_string()));
    }
    if types.contains(&"boolean") {
        return match trimmed.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "f" | "no" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(invalid("a boolean (true or false)".to_string())),
        };
    }
    Err(invalid(format!("a value of type {}", types.join(" or "))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        offset: Option<String>,
    }

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        /// rate
        event_rate: f64,
        message_count: Option<u64>,
        enabled: Option<bool>,
        source: Option<Inner>,
    }

    fn with(pairs: &[(&str, &str)]) -> WithOptions {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sql_and_json_give_the_same_struct() {
        let from_sql: Sample = parse_config(
            "t",
            nest(&with(&[
                ("event_rate", "10.5"),
                ("message_count", "7"),
                ("source.offset", "earliest"),
            ]))
            .unwrap(),
        )
        .unwrap();
        let from_json: Sample = parse_config(
            "t",
            snake_case_keys(serde_json::json!({
                "eventRate": 10.5, "messageCount": 7, "source": {"offset": "earliest"}
            })),
        )
        .unwrap();
        assert_eq!(from_sql, from_json);
        assert_eq!(from_sql.message_count, Some(7));
    }

    #[test]
    fn misspelled_key_gets_did_you_mean() {
        let err = parse_config::<Sample>(
            "impulse",
            nest(&with(&[("event_rate", "1"), ("mesage_count", "5")])).unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown option 'mesage_count' for connector 'impulse'; did you mean 'message_count'?"
        );
    }

    #[test]
    fn missing_and_mistyped_values_are_named() {
        let err = parse_config::<Sample>("impulse", nest(&with(&[])).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required option 'event_rate' for connector 'impulse'"
        );
        let err =
            parse_config::<Sample>("impulse", nest(&with(&[("event_rate", "fast")])).unwrap())
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value 'fast' for option 'event_rate' of connector 'impulse': expected a number"
        );
        let err = parse_config::<Sample>(
            "impulse",
            nest(&with(&[("event_rate", "1"), ("message_count", "-3")])).unwrap(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("expected a non-negative integer"),
            "{err}"
        );
        let err = parse_config::<Sample>(
            "impulse",
            nest(&with(&[("event_rate", "1"), ("source.ofset", "x")])).unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("'source.ofset'"), "{err}");
        assert!(err.to_string().contains("did you mean 'offset'"), "{err}");
    }

    /// A documented enum (schemars writes `oneOf` constants for it).
    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        /// the first
        Earliest,
        /// the last
        Latest,
    }

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct WithMode {
        mode: Option<Mode>,
    }

    #[test]
    fn documented_enums_list_their_values() {
        let ok: WithMode = parse_config("c", serde_json::json!({"mode": "latest"})).unwrap();
        assert_eq!(ok.mode, Some(Mode::Latest));
        let error =
            parse_config::<WithMode>("c", serde_json::json!({"mode": "first"})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value 'first' for option 'mode' of connector 'c': expected one of earliest, latest"
        );
    }

    #[test]
    fn camel_case_to_snake_case() {
        assert_eq!(to_snake_case("bootstrapServers"), "bootstrap_servers");
        assert_eq!(to_snake_case("event_rate"), "event_rate");
        assert_eq!(to_snake_case("schemaRegistryEnum"), "schema_registry_enum");
    }
}

/// Key fragments that mark a config value as secret.
const SECRET_MARKERS: &[&str] = &[
    "password",
    "secret",
    "token",
    "api_key",
    "nkey",
    "jwt",
    "private_key",
];

/// Replace secret values (passwords, API secrets, tokens) with `********` for display.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let secret = SECRET_MARKERS.iter().any(|m| lower.contains(m))
                        || lower == "apisecret"
                        || lower == "apikey";
                    let shown = if secret && !v.is_null() && !v.is_object() {
                        Value::String("********".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let shown = redact(&serde_json::json!({
            "bootstrap_servers": "b:9092",
            "authentication": {"username": "u", "password": "p"},
            "schema_registry_enum": {"endpoint": "e", "api_secret": "s"}
        }));
        assert_eq!(shown["authentication"]["password"], "********");
        assert_eq!(shown["authentication"]["username"], "u");
        assert_eq!(shown["schema_registry_enum"]["api_secret"], "********");
        assert_eq!(shown["bootstrap_servers"], "b:9092");
    }
}

/// Parse a human duration: `500ms`, `10s`, `5 seconds`, `1 minute`, `2h`, `1 day`, `0`.
/// Used for every duration option (rolling intervals, watermark delays, idle times) so they
/// all accept the same spellings.
pub fn parse_duration(value: &str) -> Option<std::time::Duration> {
    let text = value.trim().to_ascii_lowercase();
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    let millis: u64 = match text[digits.len()..].trim() {
        "" if n == 0 => 0,
        "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(n.checked_mul(millis)?))
}

/// What [`parse_duration`] accepts, for error messages.
pub const DURATION_EXPECTED: &str = "a duration such as 500ms, 10s, '5 seconds', 5m or 1h";
