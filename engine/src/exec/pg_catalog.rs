//! Corrections to `datafusion-pg-catalog`'s tables, so they agree with each other and with
//! PostgreSQL where clients depend on it:
//!
//! - `pg_namespace` has PostgreSQL's fixed OIDs (pg_catalog 11, public 2200), which the
//!   crate's static `pg_type` / `pg_proc` rows already point at; `pg_class.relnamespace`
//!   follows. Without this, joining `pg_type` to `pg_namespace` finds nothing (pgJDBC's
//!   `getTypeInfo`, type lookups by OID).
//! - `pg_class.relkind` is `m` for materialized views.
//! - `pg_attribute.atttypid` is the type the wire protocol sends for the column (the crate
//!   says text for timestamptz, interval and arrays).
//! - `pg_settings` lists the session's settings plus the limits drivers ask for.
//!
//! Each table is computed from the crate's when a query reads it (they are small).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int32Array, RecordBatch, StringArray, new_null_array};
use arrow::datatypes::{DataType, Int16Type, Int32Type, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::prelude::SessionContext;

use crate::exec::information_schema::batch_table;
use crate::exec::introspection::UserTables;

/// PostgreSQL's OIDs of the schemas every database has.
const FIXED_NAMESPACE_OIDS: [(&str, i32); 3] = [
    ("pg_catalog", 11),
    ("public", 2200),
    ("information_schema", 13_183),
];

/// The OID of the role that owns everything.
const BOOTSTRAP_SUPERUSER: i32 = 10;

/// Limits drivers read from pg_settings (pgJDBC: max_index_keys).
const FIXED_SETTINGS: [(&str, &str); 4] = [
    ("max_index_keys", "32"),
    ("max_identifier_length", "63"),
    ("server_version_num", "150000"),
    ("block_size", "8192"),
];

/// The crate's pg_catalog with Laminar's corrections, for one session.
#[derive(Debug)]
pub struct PgCatalog {
    inner: Arc<dyn SchemaProvider>,
    user_tables: Arc<UserTables>,
    settings: BTreeMap<String, String>,
}

impl PgCatalog {
    pub(crate) fn new(
        inner: Arc<dyn SchemaProvider>,
        user_tables: Arc<UserTables>,
        settings: BTreeMap<String, String>,
    ) -> Self {
        PgCatalog {
            inner,
            user_tables,
            settings,
        }
    }

    /// Every row of one of the crate's tables.
    async fn rows(&self, name: &str) -> Result<RecordBatch> {
        let table = self
            .inner
            .table(name)
            .await?
            .ok_or_else(|| DataFusionError::Plan(format!("pg_catalog.{name} is missing")))?;
        let state = SessionContext::new().state();
        let plan = table.scan(&state, None, &[], None).await?;
        let batches =
            datafusion::physical_plan::collect(plan, Arc::new(TaskContext::default())).await?;
        Ok(arrow::compute::concat_batches(&table.schema(), &batches)?)
    }

    /// The crate's namespace OIDs mapped to PostgreSQL's fixed ones.
    async fn namespace_oids(&self) -> Result<HashMap<i32, i32>> {
        let raw = self.rows("pg_namespace").await?;
        let oids = int32(&raw, "oid")?;
        let names = text(&raw, "nspname")?;
        Ok((0..raw.num_rows())
            .filter_map(|i| {
                FIXED_NAMESPACE_OIDS
                    .iter()
                    .find(|(name, _)| *name == names.value(i))
                    .map(|(_, fixed)| (oids.value(i), *fixed))
            })
            .collect())
    }

    async fn pg_namespace(&self) -> Result<RecordBatch> {
        let raw = self.rows("pg_namespace").await?;
        let map = self.namespace_oids().await?;
        let oids = remap(int32(&raw, "oid")?, &map);
        replace(&raw, "oid", Arc::new(oids))
    }

    async fn pg_class(&self) -> Result<RecordBatch> {
        let raw = self.rows("pg_class").await?;
        let map = self.namespace_oids().await?;
        let namespaces = remap(int32(&raw, "relnamespace")?, &map);
        let names = text(&raw, "relname")?;
        let kinds: StringArray = text(&raw, "relkind")?
            .iter()
            .enumerate()
            .map(|(i, kind)| match kind {
                Some("v") if self.user_tables.is_materialized(names.value(i)) => Some("m"),
                other => other,
            })
            .collect();
        let batch = replace(&raw, "relnamespace", Arc::new(namespaces))?;
        // Owned by the bootstrap superuser (10), as pg_namespace and pg_database say.
        let owners = Int32Array::from(vec![BOOTSTRAP_SUPERUSER; raw.num_rows()]);
        let batch = replace(&batch, "relowner", Arc::new(owners))?;
        replace(&batch, "relkind", Arc::new(kinds))
    }

    async fn pg_attribute(&self) -> Result<RecordBatch> {
        let raw = self.rows("pg_attribute").await?;
        let classes = self.rows("pg_class").await?;
        let class_oids = int32(&classes, "oid")?;
        let class_names = text(&classes, "relname")?;
        let schemas: HashMap<i32, SchemaRef> = (0..classes.num_rows())
            .filter_map(|i| {
                self.user_tables
                    .schema_of(class_names.value(i))
                    .map(|schema| (class_oids.value(i), schema))
            })
            .collect();
        let relids = int32(&raw, "attrelid")?;
        let numbers = raw
            .column_by_name("attnum")
            .and_then(|c| c.as_primitive_opt::<Int16Type>())
            .ok_or_else(|| DataFusionError::Internal("pg_attribute.attnum".into()))?;
        let types: Int32Array = int32(&raw, "atttypid")?
            .iter()
            .enumerate()
            .map(|(i, typid)| {
                let field = schemas.get(&relids.value(i)).and_then(|schema| {
                    let index = usize::try_from(numbers.value(i)).ok()?.checked_sub(1)?;
                    schema.fields().get(index).cloned()
                });
                match field.map(|f| arrow_pg::datatypes::into_pg_type(f.data_type())) {
                    Some(Ok(pg_type)) => i32::try_from(pg_type.oid()).ok().or(typid),
                    _ => typid,
                }
            })
            .collect();
        replace(&raw, "atttypid", Arc::new(types))
    }

    async fn pg_settings(&self) -> Result<RecordBatch> {
        let raw_schema = self
            .inner
            .table("pg_settings")
            .await?
            .map(|t| t.schema())
            .ok_or_else(|| DataFusionError::Plan("pg_catalog.pg_settings is missing".into()))?;
        let mut settings: BTreeMap<String, String> = FIXED_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings.extend(self.settings.clone());
        let n = settings.len();
        let (names, values): (Vec<String>, Vec<String>) = settings.into_iter().unzip();
        let columns = raw_schema
            .fields()
            .iter()
            .map(|field| -> Result<ArrayRef> {
                Ok(match field.name().as_str() {
                    "name" => Arc::new(StringArray::from(names.clone())),
                    "setting" | "reset_val" => Arc::new(StringArray::from(values.clone())),
                    "vartype" if field.data_type() == &DataType::Utf8 => {
                        Arc::new(StringArray::from(vec!["string"; n]))
                    }
                    "context" if field.data_type() == &DataType::Utf8 => {
                        Arc::new(StringArray::from(vec!["user"; n]))
                    }
                    _ => new_null_array(field.data_type(), n),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(raw_schema, columns)?)
    }
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let batch = match name.to_ascii_lowercase().as_str() {
            "pg_namespace" => self.pg_namespace().await?,
            "pg_class" => self.pg_class().await?,
            "pg_attribute" => self.pg_attribute().await?,
            "pg_settings" => self.pg_settings().await?,
            _ => return self.inner.table(name).await,
        };
        batch_table(batch).map(Some)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

fn int32<'a>(batch: &'a RecordBatch, column: &str) -> Result<&'a Int32Array> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_primitive_opt::<Int32Type>())
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog column {column} is not int4")))
}

fn text<'a>(batch: &'a RecordBatch, column: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog column {column} is not text")))
}

fn remap(values: &Int32Array, map: &HashMap<i32, i32>) -> Int32Array {
    values
        .iter()
        .map(|v| v.map(|v| map.get(&v).copied().unwrap_or(v)))
        .collect()
}

/// `batch` with `column` replaced by `values` (same type, same length).
fn replace(batch: &RecordBatch, column: &str, values: ArrayRef) -> Result<RecordBatch> {
    let schema = batch.schema();
    let index = schema.index_of(column)?;
    let mut columns = batch.columns().to_vec();
    columns[index] = values;
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_oids_are_remapped() {
        let values = Int32Array::from(vec![16_500, 7]);
        let map = HashMap::from([(16_500, 11)]);
        assert_eq!(remap(&values, &map).values(), &[11, 7]);
    }
}
