//! `information_schema` as PostgreSQL clients read it: DataFusion's own tables, except
//! `columns`, whose types are PostgreSQL's (`bigint`, `character varying`, ...) rather
//! than Arrow's, with positions from 1 — Grafana and other tools show these verbatim.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::{CatalogProviderList, SchemaProvider};
use datafusion::datasource::{MemTable, TableProvider, TableType};
use datafusion::error::Result;

/// DataFusion's information_schema with a PostgreSQL `columns` table.
#[derive(Debug)]
pub struct PostgresInformationSchema {
    datafusion: InformationSchemaProvider,
    catalogs: Arc<dyn CatalogProviderList>,
}

impl PostgresInformationSchema {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        PostgresInformationSchema {
            datafusion: InformationSchemaProvider::new(catalogs.clone()),
            catalogs,
        }
    }

    /// Every table of every schema: (catalog, schema, name, table), sorted by name.
    async fn tables(&self) -> Result<Vec<(String, String, String, Arc<dyn TableProvider>)>> {
        let mut found = Vec::new();
        for catalog_name in self.catalogs.catalog_names() {
            let Some(catalog) = self.catalogs.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                let mut names = schema.table_names();
                names.sort();
                for name in names {
                    if let Some(table) = schema.table(&name).await? {
                        found.push((catalog_name.clone(), schema_name.clone(), name, table));
                    }
                }
            }
        }
        Ok(found)
    }

    async fn columns(&self) -> Result<Arc<dyn TableProvider>> {
        let mut rows = ColumnRows::default();
        for (catalog, schema, name, table) in self.tables().await? {
            rows.add(&catalog, &schema, &name, &table.schema());
        }
        batch_table(rows.finish()?)
    }

    /// Views only (DataFusion lists every table there).
    async fn views(&self) -> Result<Arc<dyn TableProvider>> {
        let (mut catalogs, mut schemas, mut names) = (Vec::new(), Vec::new(), Vec::new());
        for (catalog, schema, name, table) in self.tables().await? {
            if table.table_type() == TableType::View {
                catalogs.push(catalog);
                schemas.push(schema);
                names.push(name);
            }
        }
        let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
        let schema = Arc::new(Schema::new(vec![
            text("table_catalog", false),
            text("table_schema", false),
            text("table_name", false),
            text("view_definition", true),
        ]));
        let n = names.len();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(catalogs)),
                Arc::new(StringArray::from(schemas)),
                Arc::new(StringArray::from(names)),
                Arc::new(StringArray::new_null(n)),
            ],
        )?;
        batch_table(batch)
    }
}

/// A computed catalog table.
pub(crate) fn batch_table(batch: RecordBatch) -> Result<Arc<dyn TableProvider>> {
    Ok(Arc::new(MemTable::try_new(
        batch.schema(),
        vec![vec![batch]],
    )?))
}

#[async_trait]
impl SchemaProvider for PostgresInformationSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        self.datafusion.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if name.eq_ignore_ascii_case("columns") {
            return self.columns().await.map(Some);
        }
        if name.eq_ignore_ascii_case("views") {
            return self.views().await.map(Some);
        }
        self.datafusion.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        self.datafusion.table_exist(name)
    }
}

#[derive(Default)]
struct ColumnRows {
    catalog: Vec<String>,
    schema: Vec<String>,
    table: Vec<String>,
    column: Vec<String>,
    position: Vec<i32>,
    nullable: Vec<&'static str>,
    data_type: Vec<&'static str>,
    udt_name: Vec<String>,
}

impl ColumnRows {
    fn add(&mut self, catalog: &str, schema: &str, table: &str, columns: &SchemaRef) {
        for (i, field) in columns.fields().iter().enumerate() {
            let udt = arrow_pg::datatypes::into_pg_type(field.data_type())
                .map(|t| t.name().to_string())
                .unwrap_or_else(|_| "text".to_string());
            self.catalog.push(catalog.to_string());
            self.schema.push(schema.to_string());
            self.table.push(table.to_string());
            self.column.push(field.name().clone());
            self.position.push(i32::try_from(i + 1).unwrap_or(i32::MAX));
            self.nullable
                .push(if field.is_nullable() { "YES" } else { "NO" });
            self.data_type.push(sql_standard_name(&udt));
            self.udt_name.push(udt);
        }
    }

    fn finish(self) -> Result<RecordBatch> {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let schema = Arc::new(Schema::new(vec![
            text("table_catalog"),
            text("table_schema"),
            text("table_name"),
            text("column_name"),
            Field::new("ordinal_position", DataType::Int32, false),
            Field::new("column_default", DataType::Utf8, true),
            text("is_nullable"),
            text("data_type"),
            text("udt_catalog"),
            text("udt_schema"),
            text("udt_name"),
        ]));
        let n = self.column.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.catalog.clone())),
            Arc::new(StringArray::from(self.schema)),
            Arc::new(StringArray::from(self.table)),
            Arc::new(StringArray::from(self.column)),
            Arc::new(Int32Array::from(self.position)),
            Arc::new(StringArray::new_null(n)),
            Arc::new(StringArray::from(self.nullable)),
            Arc::new(StringArray::from(self.data_type)),
            Arc::new(StringArray::from(self.catalog)),
            Arc::new(StringArray::from(vec!["pg_catalog"; n])),
            Arc::new(StringArray::from(self.udt_name)),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// information_schema's `data_type` for a PostgreSQL type name.
fn sql_standard_name(udt: &str) -> &'static str {
    match udt {
        "bool" => "boolean",
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "numeric" => "numeric",
        "text" => "text",
        "varchar" => "character varying",
        "char" | "bpchar" => "character",
        "bytea" => "bytea",
        "date" => "date",
        "time" => "time without time zone",
        "timestamp" => "timestamp without time zone",
        "timestamptz" => "timestamp with time zone",
        "interval" => "interval",
        "json" => "json",
        "jsonb" => "jsonb",
        "uuid" => "uuid",
        array if array.starts_with('_') => "ARRAY",
        _ => "USER-DEFINED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_type_names() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                true,
            ),
        ]));
        let mut rows = ColumnRows::default();
        rows.add("laminar", "public", "t", &schema);
        assert_eq!(
            rows.data_type,
            ["bigint", "text", "timestamp without time zone"]
        );
        assert_eq!(rows.udt_name, ["int8", "text", "timestamp"]);
        assert_eq!(rows.position, [1, 2, 3]);
        assert_eq!(rows.nullable, ["NO", "YES", "YES"]);
    }
}
