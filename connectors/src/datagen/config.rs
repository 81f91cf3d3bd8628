use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::ConnectorError;
use crate::options::parse_config;

/// Rows per second when `rows_per_second` is not set (Flink's default).
pub(super) const DEFAULT_ROWS_PER_SECOND: f64 = 10_000.0;
/// Characters of a TEXT value, bytes of a BYTEA value, when `length` is not set (Flink's default).
pub(super) const DEFAULT_LENGTH: u64 = 100;
/// Generator seed when `seed` is not set: runs are reproducible unless asked otherwise.
pub(super) const DEFAULT_SEED: u64 = 0;

/// Table options of `datagen`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatagenTable {
    /// Rows per second, across all partitions (Flink: `rows-per-second`). Default 10000.
    #[schemars(range(min = 0.0))]
    pub rows_per_second: Option<f64>,
    /// Stop after this many rows in total; the table is then bounded (Flink:
    /// `number-of-rows`). Default: no limit.
    pub number_of_rows: Option<u64>,
    /// Generator seed: the same seed gives the same values (TIMESTAMP and DATE columns follow
    /// the clock). Default 0.
    pub seed: Option<u64>,
    /// Options of single columns, by column name: `fields.<column>.<option>` (Flink:
    /// `fields.#.<option>`). Columns not named here get random values with the defaults.
    #[serde(default, deserialize_with = "deserialize_fields")]
    #[schemars(with = "BTreeMap<String, DatagenField>")]
    pub fields: BTreeMap<String, DatagenField>,
}

/// `fields.<column>.*` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatagenField {
    /// How the values are made: `random` (default) or `sequence` (Flink: `fields.#.kind`).
    pub kind: Option<FieldKind>,
    /// Integer and floating columns: the smallest random value, or the first value of a
    /// sequence (Flink: `fields.#.min`). Default: the type's minimum for integers (0 for a
    /// sequence), 0 for floating columns.
    pub min: Option<f64>,
    /// Integer and floating columns: the largest random value, or the last value of a
    /// sequence (Flink: `fields.#.max`). Default: the type's maximum for integers, 1 for
    /// floating columns.
    pub max: Option<f64>,
    /// `kind = sequence`: the first value, like `min` (Flink: `fields.#.start`).
    pub start: Option<i64>,
    /// `kind = sequence`: the last value, like `max` (Flink: `fields.#.end`). A sequence with
    /// an end makes the table bounded.
    pub end: Option<i64>,
    /// TEXT and BYTEA columns: characters (bytes) per value (Flink: `fields.#.length`).
    /// Default 100.
    pub length: Option<u64>,
    /// TIMESTAMP and DATE columns: values lie between this long ago and now, uniformly
    /// (`5s`, `10 minutes`, `1h`; Flink: `fields.#.max-past`). Default 0: now.
    pub max_past: Option<String>,
    /// Share of rows in which the column is NULL, from 0 to 1 (Flink: `fields.#.null-rate`).
    /// Default 0.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub null_rate: Option<f64>,
}

/// How a column's values are made: `random` draws each value uniformly between `min` and
/// `max`; `sequence` counts up from `start` (or `min`) by one per row, and ends the table after
/// `end` (or `max`) if one is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    // No doc comments on the variants: they would turn the schema's `enum` into a `oneOf`,
    // and `options` words its "expected one of" errors from `enum`.
    #[default]
    Random,
    Sequence,
}

impl DatagenTable {
    /// Rows per second across all partitions.
    pub(super) fn rate(&self) -> f64 {
        self.rows_per_second.unwrap_or(DEFAULT_ROWS_PER_SECOND)
    }

    /// Whether the table ends by itself: a row limit, or a sequence with a last value.
    pub(super) fn ends(&self) -> bool {
        self.number_of_rows.is_some()
            || self.fields.values().any(|f| {
                f.kind == Some(FieldKind::Sequence) && (f.end.is_some() || f.max.is_some())
            })
    }
}

/// `fields` is a map keyed by column name, which `options` passes through unchecked (it
/// only knows the struct's own keys). Each column's options are checked here instead, with
/// the same coercion of SQL strings and the same did-you-mean, and errors name the full
/// `fields.<column>.<option>` path.
fn deserialize_fields<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, DatagenField>, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
    raw.into_iter()
        .map(|(column, options)| match parse_config("datagen", options) {
            Ok(field) => Ok((column, field)),
            Err(err) => Err(serde::de::Error::custom(field_error(&column, err))),
        })
        .collect()
}

/// Word an error about `fields.<column>`'s options with the option's full path (the caller
/// prefixes `datagen: `).
fn field_error(column: &str, err: ConnectorError) -> String {
    let path = |key: &str| {
        if key.is_empty() {
            format!("fields.{column}")
        } else {
            format!("fields.{column}.{key}")
        }
    };
    match err {
        ConnectorError::UnknownOption { key, hint, .. } => {
            format!("unknown option '{}'{hint}", path(&key))
        }
        ConnectorError::MissingOption { key, .. } => {
            format!("missing required option '{}'", path(&key))
        }
        ConnectorError::InvalidValue {
            key,
            value,
            expected,
            ..
        } => format!(
            "invalid value '{value}' for option '{}': expected {expected}",
            path(&key)
        ),
        other => {
            let text = other.to_string();
            format!(
                "{}: {}",
                path(""),
                text.strip_prefix("datagen: ").unwrap_or(&text)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{WithOptions, nest, snake_case_keys};

    fn sql(pairs: &[(&str, &str)]) -> crate::error::Result<DatagenTable> {
        let options: WithOptions = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_config("datagen", nest(&options)?)
    }

    #[test]
    fn sql_and_json_give_the_same_struct() {
        let from_sql = sql(&[
            ("rows_per_second", "1000000000"),
            ("number_of_rows", "10000000"),
            ("fields.auction.min", "1000"),
            ("fields.auction.max", "10999"),
            ("fields.channel.length", "8"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "-5"),
            ("fields.date_time.max_past", "5s"),
            ("fields.extra.null_rate", "0.25"),
        ])
        .unwrap();
        let from_json: DatagenTable = parse_config(
            "datagen",
            snake_case_keys(serde_json::json!({
                "rowsPerSecond": 1e9, "numberOfRows": 10_000_000,
                "fields": {
                    "auction": {"min": 1000, "max": 10999},
                    "channel": {"length": 8},
                    "id": {"kind": "sequence", "start": -5},
                    "date_time": {"maxPast": "5s"},
                    "extra": {"nullRate": 0.25}
                }
            })),
        )
        .unwrap();
        assert_eq!(from_sql, from_json);
        assert_eq!(from_sql.fields["auction"].min, Some(1000.0));
        assert_eq!(from_sql.fields["auction"].max, Some(10999.0));
        assert_eq!(from_sql.fields["channel"].length, Some(8));
        assert_eq!(from_sql.fields["id"].kind, Some(FieldKind::Sequence));
        assert_eq!(from_sql.fields["id"].start, Some(-5));
        assert_eq!(from_sql.fields["extra"].null_rate, Some(0.25));
        assert!(from_sql.ends());
    }

    #[test]
    fn normalized_config_parses_again() {
        let table = sql(&[("fields.auction.min", "1"), ("seed", "7")]).unwrap();
        let stored = serde_json::to_value(&table).unwrap();
        let again: DatagenTable = parse_config("datagen", stored).unwrap();
        assert_eq!(again, table);
        let empty: DatagenTable = parse_config("datagen", serde_json::json!({})).unwrap();
        assert!(empty.fields.is_empty());
        assert_eq!(empty.rate(), DEFAULT_ROWS_PER_SECOND);
        assert!(!empty.ends());
    }

    #[test]
    fn field_options_are_checked_with_their_full_path() {
        let err = sql(&[("fields.auction.min", "lots")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "datagen: invalid value 'lots' for option 'fields.auction.min': expected a number"
        );
        let err = sql(&[("fields.id.kind", "seq")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "datagen: invalid value 'seq' for option 'fields.id.kind': expected one of random, sequence"
        );
        // Flink's spelling of the nested keys gets a did-you-mean.
        let err = sql(&[("fields.date_time.max-past", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "datagen: unknown option 'fields.date_time.max-past'; did you mean 'max_past'?"
        );
        let err = sql(&[("fields.channel", "8")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("for option 'fields.channel': expected a value of type object"),
            "{err}"
        );
        let err = sql(&[("number-of-rows", "5")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown option 'number-of-rows' for connector 'datagen'; did you mean 'number_of_rows'?"
        );
    }

    #[test]
    fn sequences_with_an_end_bound_the_table() {
        assert!(!sql(&[("fields.id.kind", "sequence")]).unwrap().ends());
        assert!(
            sql(&[("fields.id.kind", "sequence"), ("fields.id.end", "9")])
                .unwrap()
                .ends()
        );
        assert!(
            sql(&[("fields.id.kind", "sequence"), ("fields.id.max", "9")])
                .unwrap()
                .ends()
        );
        assert!(!sql(&[("fields.id.max", "9")]).unwrap().ends());
        assert!(sql(&[("number_of_rows", "0")]).unwrap().ends());
    }
}
