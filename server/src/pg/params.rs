//! Parameters of the extended query protocol: their described types and their values,
//! decoded from text or binary format into values of the planner's types.

use std::sync::Arc;

use chrono::Datelike;

use engine::EngineError;
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;

use super::error::to_pg;
use super::handler::Prepared;

/// `oid` / `oid[]` casts of placeholders in `sql`, by parameter position.
pub(super) fn oid_parameter_casts(sql: &str) -> Vec<Option<Type>> {
    let bytes = sql.as_bytes();
    let skip_space = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut casts: Vec<Option<Type>> = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'$' if !quoted => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let end = i + 1 + digits;
                if let Ok(n) = sql[i + 1..end].parse::<usize>()
                    && n > 0
                {
                    let mut j = skip_space(end);
                    if sql[j..].starts_with("::") {
                        j = skip_space(j + 2);
                        let name_len = bytes[j..]
                            .iter()
                            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'.')
                            .count();
                        let name = sql[j..j + name_len].to_ascii_lowercase();
                        if name == "oid" || name == "pg_catalog.oid" {
                            let after = skip_space(j + name_len);
                            let array = sql[after..].starts_with("[]");
                            if casts.len() < n {
                                casts.resize(n, None);
                            }
                            casts[n - 1] = Some(if array { Type::OID_ARRAY } else { Type::OID });
                        }
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    casts
}

/// Whether SQL text has `$n` placeholders (outside string literals).
pub(super) fn has_placeholders(sql: &str) -> bool {
    let mut quoted = false;
    let bytes = sql.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'\'' => quoted = !quoted,
            b'$' if !quoted && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => return true,
            _ => {}
        }
    }
    false
}

/// A parameter's pg type: what the client declared, else what the planner inferred.
pub(super) fn param_pg_type(
    declared: Option<&Type>,
    inferred: Option<&arrow::datatypes::DataType>,
) -> Type {
    match (declared, inferred) {
        (Some(t), _) if *t != Type::UNKNOWN => t.clone(),
        (_, Some(dt)) => arrow_pg::datatypes::into_pg_type(dt).unwrap_or(Type::TEXT),
        _ => Type::TEXT,
    }
}

/// The SQL name of a parameter type a client declared, for the types Laminar reads. Text
/// is left out: drivers declare strings as text/varchar for values of any type (pgJDBC's
/// setString), which the planner's type then reads.
pub(super) fn declared_type_name(declared: &Option<Type>) -> Option<&'static str> {
    match declared.as_ref()? {
        t if *t == Type::INT2 => Some("int2"),
        t if *t == Type::INT4 => Some("int4"),
        t if *t == Type::INT8 => Some("int8"),
        t if *t == Type::FLOAT4 => Some("float4"),
        t if *t == Type::FLOAT8 => Some("float8"),
        t if *t == Type::BOOL => Some("boolean"),
        t if *t == Type::DATE => Some("date"),
        t if *t == Type::TIME => Some("time"),
        t if *t == Type::TIMESTAMP => Some("timestamp"),
        t if *t == Type::TIMESTAMPTZ => Some("timestamptz"),
        t if *t == Type::NUMERIC => Some("numeric"),
        t if *t == Type::BYTEA => Some("bytea"),
        _ => None,
    }
}

/// The Arrow type of a date or time parameter type.
fn temporal_type(pg_type: &Type) -> Option<arrow::datatypes::DataType> {
    use arrow::datatypes::{DataType, TimeUnit};
    match *pg_type {
        Type::DATE => Some(DataType::Date32),
        Type::TIME => Some(DataType::Time64(TimeUnit::Microsecond)),
        Type::TIMESTAMP => Some(DataType::Timestamp(TimeUnit::Microsecond, None)),
        Type::TIMESTAMPTZ => Some(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("+00:00".into()),
        )),
        _ => None,
    }
}

/// An array parameter as a list value; `element` makes one element (and, given `None`,
/// the element type of an empty or NULL array).
fn list<T>(
    values: Option<Vec<Option<T>>>,
    element: impl Fn(Option<T>) -> engine::ScalarValue,
) -> engine::ScalarValue {
    let element_type = element(None).data_type();
    match values {
        Some(values) => {
            let elements: Vec<engine::ScalarValue> = values.into_iter().map(element).collect();
            engine::ScalarValue::List(engine::ScalarValue::new_list_nullable(
                &elements,
                &element_type,
            ))
        }
        None => engine::ScalarValue::try_new_null(&arrow::datatypes::DataType::new_list(
            element_type,
            true,
        ))
        .unwrap_or(engine::ScalarValue::Null),
    }
}

/// Decode the portal's parameters into values of the planner's types.
pub(super) fn portal_params(
    portal: &Portal<Arc<Prepared>>,
) -> PgWireResult<Vec<engine::ScalarValue>> {
    use engine::ScalarValue;
    let prepared = &portal.statement.statement;
    (0..portal.parameter_len())
        .map(|i| {
            let inferred = prepared.params.get(i).and_then(|t| t.as_ref());
            let declared = portal
                .statement
                .parameter_types
                .get(i)
                .and_then(|t| t.as_ref())
                .filter(|t| **t != Type::UNKNOWN)
                .or_else(|| prepared.cast_params.get(i).and_then(|t| t.as_ref()));
            let pg_type = param_pg_type(declared, inferred);
            // Dates and times as text, in PostgreSQL's spellings (see `temporal_from_text`).
            if !portal.parameter_format.is_binary(i)
                && let Some(target) = temporal_type(&pg_type)
            {
                let target = inferred.cloned().unwrap_or(target);
                let Some(bytes) = &portal.parameters[i] else {
                    return ScalarValue::try_from(&target).map_err(|e| to_pg(e.into()));
                };
                return temporal_from_text(&String::from_utf8_lossy(bytes), &target, pg_type.name()).map_err(
                    |reason| {
                        to_pg(EngineError::InvalidParameter(format!(
                            "parameter ${}: {reason}",
                            i + 1
                        )))
                    },
                );
            }
            if portal.parameter_format.is_binary(i) && pg_type == Type::INTERVAL {
                return interval_from_binary(portal.parameters[i].as_deref()).ok_or_else(|| {
                    to_pg(EngineError::InvalidParameter(format!(
                        "parameter ${}: a binary interval is 16 bytes",
                        i + 1
                    )))
                });
            }
            let value = match pg_type {
                Type::BOOL => ScalarValue::Boolean(portal.parameter::<bool>(i, &pg_type)?),
                Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(i, &pg_type)?),
                Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(i, &pg_type)?),
                Type::OID => {
                    ScalarValue::Int32(portal.parameter::<u32>(i, &pg_type)?.map(|oid| oid as i32))
                }
                Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(i, &pg_type)?),
                Type::FLOAT4 => ScalarValue::Float32(portal.parameter::<f32>(i, &pg_type)?),
                Type::FLOAT8 => ScalarValue::Float64(portal.parameter::<f64>(i, &pg_type)?),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                    ScalarValue::Utf8(portal.parameter::<String>(i, &pg_type)?)
                }
                // Dates and times in either format (asyncpg and JDBC send them binary).
                Type::DATE => ScalarValue::Date32(
                    portal
                        .parameter::<chrono::NaiveDate>(i, &pg_type)?
                        .map(|d| (d - chrono::DateTime::UNIX_EPOCH.date_naive()).num_days())
                        .map(|days| i32::try_from(days).unwrap_or(i32::MAX)),
                ),
                Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
                    portal
                        .parameter::<chrono::NaiveDateTime>(i, &pg_type)?
                        .map(|t| t.and_utc().timestamp_micros()),
                    None,
                ),
                Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
                    portal
                        .parameter::<chrono::DateTime<chrono::FixedOffset>>(i, &pg_type)?
                        .map(|t| t.timestamp_micros()),
                    Some("+00:00".into()),
                ),
                Type::TIME => ScalarValue::Time64Microsecond(
                    portal
                        .parameter::<chrono::NaiveTime>(i, &pg_type)?
                        .map(|t| {
                            use chrono::Timelike;
                            i64::from(t.num_seconds_from_midnight()) * 1_000_000
                                + i64::from(t.nanosecond() / 1_000)
                        }),
                ),
                Type::NUMERIC => match portal.parameter::<rust_decimal::Decimal>(i, &pg_type)? {
                    Some(d) => ScalarValue::Decimal128(
                        Some(d.mantissa()),
                        38,
                        i8::try_from(d.scale()).unwrap_or(i8::MAX),
                    ),
                    None => ScalarValue::Decimal128(None, 38, 0),
                },
                Type::BYTEA => ScalarValue::Binary(portal.parameter::<Vec<u8>>(i, &pg_type)?),
                // Arrays (`WHERE id = ANY($1)`; asyncpg's type lookups send oid[]).
                Type::INT2_ARRAY => list(portal.parameter::<Vec<Option<i16>>>(i, &pg_type)?, |v| {
                    ScalarValue::Int16(v)
                }),
                Type::INT4_ARRAY => list(portal.parameter::<Vec<Option<i32>>>(i, &pg_type)?, |v| {
                    ScalarValue::Int32(v)
                }),
                // OIDs are planned as integers (type OIDs fit).
                Type::OID_ARRAY => list(portal.parameter::<Vec<Option<u32>>>(i, &pg_type)?, |v| {
                    ScalarValue::Int32(v.map(|oid| oid as i32))
                }),
                Type::INT8_ARRAY => list(portal.parameter::<Vec<Option<i64>>>(i, &pg_type)?, |v| {
                    ScalarValue::Int64(v)
                }),
                Type::FLOAT8_ARRAY => {
                    list(portal.parameter::<Vec<Option<f64>>>(i, &pg_type)?, |v| {
                        ScalarValue::Float64(v)
                    })
                }
                Type::BOOL_ARRAY => list(portal.parameter::<Vec<Option<bool>>>(i, &pg_type)?, |v| {
                    ScalarValue::Boolean(v)
                }),
                Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => {
                    list(portal.parameter::<Vec<Option<String>>>(i, &pg_type)?, |v| {
                        ScalarValue::Utf8(v)
                    })
                }
                other => {
                    // Other types arrive as text here; the cast below gives them their type.
                    if portal.parameter_format.is_binary(i) {
                        return Err(to_pg(EngineError::Unsupported(format!(
                            "parameter ${} has type {other} in binary format, which is not supported yet; send it as text",
                            i + 1
                        ))));
                    }
                    let text = portal.parameters[i]
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                    ScalarValue::Utf8(text)
                }
            };
            match inferred {
                Some(dt) if value.data_type() != *dt => value.cast_to(dt).map_err(|e| {
                    to_pg(EngineError::InvalidParameter(format!(
                        "parameter ${}: {e}",
                        i + 1
                    )))
                }),
                _ => Ok(value),
            }
        })
        .collect()
}

/// A date or time parameter sent as text, in the spellings PostgreSQL accepts beyond Arrow's:
/// a `BC` suffix (pgJDBC's years before 1), a zone after a date (`2024-01-02 +00`, pgJDBC's
/// `setDate`) or after a time without time zone (`03:04:05+00`, `setTime`), which
/// PostgreSQL ignores too. The error says why the text is not a value of `target`.
fn temporal_from_text(
    text: &str,
    target: &arrow::datatypes::DataType,
    type_name: &str,
) -> Result<engine::ScalarValue, String> {
    use arrow::datatypes::DataType;
    use engine::ScalarValue;
    let written = text.trim();
    let (text, bc) = match written
        .strip_suffix(" BC")
        .or_else(|| written.strip_suffix(" bc"))
    {
        Some(ad) => (ad.trim_end(), true),
        None => (written, false),
    };
    let unreadable = || format!("invalid input syntax for type {type_name}: \"{written}\"");
    let out_of_range = |e: String| format!("{type_name} out of range: \"{written}\" ({e})");
    if let DataType::Timestamp(_, zone) = target {
        let micros = timestamp_micros(text, zone.is_some(), bc).ok_or_else(unreadable)?;
        return ScalarValue::TimestampMicrosecond(Some(micros), zone.clone())
            .cast_to(target)
            .map_err(|e| out_of_range(e.to_string()));
    }
    let cast = |text: &str| {
        ScalarValue::Utf8(Some(text.to_string()))
            .cast_to(target)
            .ok()
    };
    let value = cast(text)
        .or_else(|| match target {
            DataType::Date32 => cast(text.split_whitespace().next()?),
            DataType::Time64(_) => cast(text[..text.find(['+', '-'])?].trim_end()),
            _ => None,
        })
        .ok_or_else(unreadable)?;
    match (bc, value) {
        (false, value) => Ok(value),
        (true, ScalarValue::Date32(Some(days))) => before_christ_date(days).ok_or_else(unreadable),
        (true, _) => Err(unreadable()),
    }
}

/// A timestamp as PostgreSQL reads it, in microseconds from the epoch (UTC): an offset
/// after it (`2024-01-02 03:04:05.5+02`, pgJDBC's `setTimestamp`) is applied for a
/// timestamptz and ignored for a timestamp; without one a timestamptz is UTC, the session's
/// time zone; `bc`: the year is before Christ. Chrono reads years Arrow's parser cannot
/// (it goes through nanoseconds).
fn timestamp_micros(text: &str, with_zone: bool, bc: bool) -> Option<i64> {
    let (local, offset) = match text.get(10..).and_then(|time| time.rfind(['+', '-'])) {
        Some(at) => text.split_at(at + 10),
        None => (text, ""),
    };
    let local = local.trim_end();
    let naive = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(local, format).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(local, "%Y-%m-%d")
            .ok()
            .map(|date| date.and_time(chrono::NaiveTime::MIN))
    })?;
    let naive = match bc {
        true => naive.with_year(1 - naive.year())?,
        false => naive,
    };
    let micros = naive.and_utc().timestamp_micros();
    if !with_zone || offset.is_empty() {
        return Some(micros);
    }
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits: String = offset[1..].chars().filter(char::is_ascii_digit).collect();
    let hours: i64 = digits.get(..2)?.parse().ok()?;
    let minutes: i64 = match digits.get(2..4) {
        Some(minutes) => minutes.parse().ok()?,
        None => 0,
    };
    Some(micros - sign * (hours * 3600 + minutes * 60) * 1_000_000)
}

/// The same date with year `y` as year `1 - y` (1 BC is year 0).
fn before_christ_date(days: i32) -> Option<engine::ScalarValue> {
    let epoch = chrono::DateTime::UNIX_EPOCH.date_naive();
    let date = epoch + chrono::Duration::days(i64::from(days));
    let flipped = date.with_year(1 - date.year())?;
    let days = i32::try_from((flipped - epoch).num_days()).ok()?;
    Some(engine::ScalarValue::Date32(Some(days)))
}

/// PostgreSQL's binary interval: microseconds (int8), days (int4), months (int4).
fn interval_from_binary(bytes: Option<&[u8]>) -> Option<engine::ScalarValue> {
    use arrow::datatypes::IntervalMonthDayNano;
    let Some(bytes) = bytes else {
        return Some(engine::ScalarValue::IntervalMonthDayNano(None));
    };
    let micros = i64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?);
    let days = i32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
    let months = i32::from_be_bytes(bytes.get(12..16)?.try_into().ok()?);
    Some(engine::ScalarValue::IntervalMonthDayNano(Some(
        IntervalMonthDayNano::new(months, days, micros.checked_mul(1_000)?),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, TimeUnit};
    use engine::ScalarValue;

    #[test]
    fn oid_casts_are_found_by_position() {
        let casts =
            oid_parameter_casts("SELECT $2::oid, '$1::oid' WHERE x = any($1 :: pg_catalog.oid [])");
        assert_eq!(casts, vec![Some(Type::OID_ARRAY), Some(Type::OID)]);
        assert!(oid_parameter_casts("SELECT $1::oidvector").is_empty());
    }

    #[test]
    fn dates_and_times_in_postgres_spellings() {
        let date = |text| temporal_from_text(text, &DataType::Date32, "date").ok();
        assert_eq!(date("2024-01-02"), Some(ScalarValue::Date32(Some(19724))));
        assert_eq!(
            date("2024-01-02 +00"),
            Some(ScalarValue::Date32(Some(19724)))
        );
        // 1 BC is year 0: 366 days (a leap year) before 0001-01-01.
        let ad1 = date("0001-01-01");
        let bc1 = date("0001-01-01 BC");
        match (ad1, bc1) {
            (Some(ScalarValue::Date32(Some(ad))), Some(ScalarValue::Date32(Some(bc)))) => {
                assert_eq!(ad - bc, 366)
            }
            other => panic!("{other:?}"),
        }
        let naive = temporal_from_text(
            "2024-01-02 03:04:05.25+02",
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            "t",
        )
        .ok();
        assert_eq!(
            naive,
            Some(ScalarValue::TimestampMicrosecond(
                Some(1_704_164_645_250_000),
                None
            ))
        );
        let zoned = temporal_from_text(
            "2024-01-02 03:04:05.25+02",
            &DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            "t",
        )
        .ok();
        assert_eq!(
            zoned,
            Some(ScalarValue::TimestampMicrosecond(
                Some(1_704_157_445_250_000),
                Some("+00:00".into())
            ))
        );
        let time =
            temporal_from_text("03:04:05+00", &DataType::Time64(TimeUnit::Microsecond), "t").ok();
        assert_eq!(
            time,
            Some(ScalarValue::Time64Microsecond(Some(11_045_000_000)))
        );
        let ts = temporal_from_text(
            "0044-03-15 12:00:00 BC",
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            "t",
        )
        .ok();
        let Some(ScalarValue::TimestampMicrosecond(Some(micros), None)) = ts else {
            panic!("{ts:?}")
        };
        let t = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        assert_eq!(t.to_rfc3339(), "-0043-03-15T12:00:00+00:00");
        // Nanosecond timestamps (DataFusion's `::timestamp`) end in 2262; the error says so.
        let error = temporal_from_text(
            "2500-01-01 00:00:00",
            &DataType::Timestamp(TimeUnit::Nanosecond, None),
            "t",
        )
        .unwrap_err();
        assert!(error.contains("out of range"), "{error}");
        let error = temporal_from_text("soon", &DataType::Date32, "date").unwrap_err();
        assert_eq!(error, "invalid input syntax for type date: \"soon\"");
    }

    #[test]
    fn binary_intervals() {
        let mut bytes = 3_000_000i64.to_be_bytes().to_vec();
        bytes.extend(2i32.to_be_bytes());
        bytes.extend((-1i32).to_be_bytes());
        assert_eq!(
            interval_from_binary(Some(&bytes)),
            Some(ScalarValue::IntervalMonthDayNano(Some(
                arrow::datatypes::IntervalMonthDayNano::new(-1, 2, 3_000_000_000)
            )))
        );
        assert_eq!(interval_from_binary(Some(&bytes[..8])), None);
    }
}
