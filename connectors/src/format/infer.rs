//! Columns of a table declared without a column list, from sample records.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// Types Laminar stores and reads back: strings and binaries in their plain forms,
/// timestamps in nanoseconds (sources cast what they read to these).
pub(crate) fn normalize(data_type: &DataType) -> DataType {
    match data_type {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Timestamp(_, tz) => {
            DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, tz.clone())
        }
        DataType::Date64 => DataType::Date32,
        DataType::Null => DataType::Utf8,
        DataType::List(f) | DataType::LargeList(f) => {
            DataType::List(Arc::new(Field::new("item", normalize(f.data_type()), true)))
        }
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name(), normalize(f.data_type()), true))
                .collect(),
        ),
        other => other.clone(),
    }
}

pub(crate) fn normalized(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), normalize(f.data_type()), true))
            .collect::<Vec<_>>(),
    ))
}

/// Top-level keys of a JSON object in the order they are written (empty if not an object).
fn key_order(line: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::de::Visitor<'de> for &mut Keys {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                self.0.push(key);
            }
            Ok(())
        }
    }
    let mut keys = Keys(Vec::new());
    let mut de = serde_json::Deserializer::from_str(line);
    let _ = serde::Deserializer::deserialize_map(&mut de, &mut keys);
    keys.0
}

/// The columns of sampled JSON records (objects), in the order their keys are first written;
/// `None` when there are no records or no keys. The error says which record is not JSON.
pub(crate) fn json_schema<'a>(
    records: impl Iterator<Item = &'a [u8]>,
) -> Result<Option<SchemaRef>, String> {
    let mut values = Vec::new();
    let mut order: Vec<String> = Vec::new();
    for (i, record) in records.enumerate() {
        let text = String::from_utf8_lossy(record);
        for key in key_order(&text) {
            if !order.contains(&key) {
                order.push(key);
            }
        }
        values.push(
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("sample record {} is not JSON: {e}", i + 1))?,
        );
    }
    let inferred = arrow_json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
        .map_err(|e| e.to_string())?;
    // serde_json's maps are sorted; give the columns the order of the data.
    let fields: Vec<Field> = order
        .iter()
        .filter_map(|name| inferred.field_with_name(name).ok().cloned())
        .collect();
    if fields.is_empty() {
        return Ok(None);
    }
    Ok(Some(normalized(&Schema::new(fields))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_columns_in_written_order() {
        let records: [&[u8]; 2] = [br#"{"b": 1, "a": "x"}"#, br#"{"c": [1.5]}"#];
        let schema = json_schema(records.into_iter()).unwrap().unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        let error = json_schema([b"nope".as_slice()].into_iter()).unwrap_err();
        assert!(error.starts_with("sample record 1 is not JSON"), "{error}");
    }
}
