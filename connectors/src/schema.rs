//! Column types: the SQL spelling users write, the REST spellings of the product page,
//! and the Arrow types batches carry.

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use serde_json::Value;

use crate::error::{ConnectorError, Result};

/// Parse a SQL type name (`BIGINT`, `TEXT`, `DECIMAL(10,2)`, `INT[]`, ...) or an Arrow
/// primitive name as the product page writes them (`Int64`, `Utf8`, `Timestamp`).
pub fn parse_type(name: &str) -> Result<DataType> {
    let trimmed = name.trim();
    if let Some(inner) = trimmed.strip_suffix("[]") {
        return Ok(list_of(parse_type(inner)?));
    }
    let upper = trimmed.to_ascii_uppercase();
    // Slice the original text so nested field names keep their case.
    if upper.starts_with("ARRAY<") && upper.ends_with('>') {
        return Ok(list_of(parse_type(&trimmed[6..trimmed.len() - 1])?));
    }
    if upper.starts_with("STRUCT<") && upper.ends_with('>') {
        return parse_struct(trimmed, &trimmed[7..trimmed.len() - 1]);
    }
    if let Some(args) = upper
        .strip_prefix("DECIMAL")
        .or_else(|| upper.strip_prefix("NUMERIC"))
    {
        return parse_decimal(trimmed, args);
    }
    // VARCHAR(n), TIMESTAMP(3) WITH TIME ZONE, ...: the argument does not change the Arrow type.
    let base = strip_arguments(&upper);
    let base = base.as_str();
    let data_type = match base {
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" | "INT2" | "INT16" => DataType::Int16,
        "INT" | "INTEGER" | "INT4" | "INT32" => DataType::Int32,
        "BIGINT" | "INT8" | "INT64" => DataType::Int64,
        "TINYINT UNSIGNED" | "UINT8" => DataType::UInt8,
        "SMALLINT UNSIGNED" | "UINT16" => DataType::UInt16,
        "INT UNSIGNED" | "INTEGER UNSIGNED" | "UINT32" => DataType::UInt32,
        "BIGINT UNSIGNED" | "UINT64" => DataType::UInt64,
        "FLOAT" | "REAL" | "FLOAT4" | "FLOAT32" => DataType::Float32,
        "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" | "FLOAT64" => DataType::Float64,
        "TEXT" | "STRING" | "VARCHAR" | "CHAR" | "CHARACTER" | "CHARACTER VARYING" | "UTF8"
        | "JSON" | "JSONB" => DataType::Utf8,
        "BYTEA" | "BINARY" | "VARBINARY" | "BYTES" => DataType::Binary,
        "DATE" | "DATE32" => DataType::Date32,
        "TIME" => DataType::Time64(TimeUnit::Microsecond),
        "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => {
            DataType::Timestamp(TimeUnit::Nanosecond, None)
        }
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => {
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))
        }
        "INTERVAL" => DataType::Interval(IntervalUnit::MonthDayNano),
        _ => return Err(ConnectorError::UnsupportedType(trimmed.to_string())),
    };
    Ok(data_type)
}

/// `TIMESTAMP(3) WITH TIME ZONE` → `TIMESTAMP WITH TIME ZONE`.
fn strip_arguments(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0;
    for ch in name.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Arrow's own type names, as the product page's `{"primitive": "Int64"}` uses them.
fn arrow_primitive(name: &str) -> Option<DataType> {
    Some(match name {
        "Boolean" | "Bool" => DataType::Boolean,
        "Int8" => DataType::Int8,
        "Int16" => DataType::Int16,
        "Int32" => DataType::Int32,
        "Int64" => DataType::Int64,
        "UInt8" => DataType::UInt8,
        "UInt16" => DataType::UInt16,
        "UInt32" => DataType::UInt32,
        "UInt64" => DataType::UInt64,
        "Float32" => DataType::Float32,
        "Float64" => DataType::Float64,
        "Utf8" | "String" => DataType::Utf8,
        "Binary" | "Bytes" => DataType::Binary,
        "Date32" | "Date" => DataType::Date32,
        "Timestamp" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        "Json" => DataType::Utf8,
        _ => return None,
    })
}

/// `a BIGINT, b STRUCT<c TEXT>` → struct fields (all nullable).
fn parse_struct(original: &str, inner: &str) -> Result<DataType> {
    let mut fields = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let bytes = inner.as_bytes();
    for i in 0..=bytes.len() {
        let at_end = i == bytes.len();
        if !at_end {
            match bytes[i] {
                b'<' | b'(' => depth += 1,
                b'>' | b')' => depth -= 1,
                _ => {}
            }
        }
        if at_end || (bytes[i] == b',' && depth == 0) {
            let part = inner[start..i].trim();
            start = i + 1;
            if part.is_empty() {
                continue;
            }
            let (name, ty) = part
                .split_once(char::is_whitespace)
                .ok_or_else(|| ConnectorError::UnsupportedType(original.to_string()))?;
            fields.push(Field::new(name.trim_matches('"'), parse_type(ty)?, true));
        }
    }
    Ok(DataType::Struct(fields.into()))
}

fn list_of(item: DataType) -> DataType {
    DataType::List(std::sync::Arc::new(Field::new("item", item, true)))
}

fn parse_decimal(original: &str, args: &str) -> Result<DataType> {
    let args = args.trim();
    if args.is_empty() {
        return Ok(DataType::Decimal128(38, 10));
    }
    let bad = || ConnectorError::UnsupportedType(original.to_string());
    let inner = args
        .strip_prefix('(')
        .and_then(|a| a.strip_suffix(')'))
        .ok_or_else(bad)?;
    let mut parts = inner.split(',').map(str::trim);
    let precision: u8 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let scale: i8 = match parts.next() {
        Some(s) => s.parse().map_err(|_| bad())?,
        None => 0,
    };
    if precision == 0 || precision > 38 || scale as i16 > precision as i16 {
        return Err(bad());
    }
    Ok(DataType::Decimal128(precision, scale))
}

/// Parse a REST field type: a string (`"BIGINT"`) or `{"primitive": "Int64"}`.
pub fn parse_rest_type(value: &Value) -> Result<DataType> {
    match value {
        Value::String(s) => parse_type(s),
        Value::Object(map) => match (map.get("primitive"), map.get("list")) {
            (Some(Value::String(p)), _) => arrow_primitive(p).map_or_else(|| parse_type(p), Ok),
            (_, Some(item)) => {
                let item = item.get("type").unwrap_or(item);
                Ok(list_of(parse_rest_type(item)?))
            }
            _ => Err(ConnectorError::UnsupportedType(value.to_string())),
        },
        other => Err(ConnectorError::UnsupportedType(other.to_string())),
    }
}

/// The SQL name of an Arrow type, as `DESCRIBE` and the REST API show it.
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "TINYINT UNSIGNED".into(),
        DataType::UInt16 => "SMALLINT UNSIGNED".into(),
        DataType::UInt32 => "INT UNSIGNED".into(),
        DataType::UInt64 => "BIGINT UNSIGNED".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "TEXT".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTEA".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}[]", sql_type_name(f.data_type()))
        }
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_type_name(f.data_type())))
                .collect();
            format!("STRUCT<{}>", inner.join(", "))
        }
        DataType::Map(_, _) => "MAP".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_names_round_trip() {
        for name in [
            "BOOLEAN",
            "SMALLINT",
            "INT",
            "BIGINT",
            "FLOAT",
            "DOUBLE",
            "TEXT",
            "BYTEA",
            "DATE",
            "TIME",
            "TIMESTAMP",
            "INTERVAL",
            "DECIMAL(10,2)",
            "BIGINT[]",
        ] {
            let parsed = parse_type(name).unwrap();
            assert_eq!(sql_type_name(&parsed), name);
        }
    }

    #[test]
    fn rest_shapes() {
        let t = parse_rest_type(&serde_json::json!({"primitive": "Int64"})).unwrap();
        assert_eq!(t, DataType::Int64);
        let t = parse_rest_type(&serde_json::json!("Utf8")).unwrap();
        assert_eq!(t, DataType::Utf8);
        assert!(parse_type("GEOMETRY").is_err());
        let t = parse_rest_type(&serde_json::json!({"primitive": "Int8"})).unwrap();
        assert_eq!(t, DataType::Int8, "Arrow names in REST primitives");
        assert_eq!(
            parse_type("INT8").unwrap(),
            DataType::Int64,
            "PostgreSQL's int8 is BIGINT"
        );
        assert_eq!(
            parse_type("TIMESTAMP(3) WITH TIME ZONE").unwrap(),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))
        );
        assert_eq!(parse_type("CHARACTER(4)").unwrap(), DataType::Utf8);
        let nested =
            parse_type("STRUCT<Id BIGINT, tags TEXT[], inner STRUCT<x DOUBLE, y DECIMAL(10,2)>>")
                .unwrap();
        assert_eq!(
            sql_type_name(&nested),
            "STRUCT<Id BIGINT, tags TEXT[], inner STRUCT<x DOUBLE, y DECIMAL(10,2)>>"
        );
    }
}
