//! Defining tables and connection profiles — one path for SQL `CREATE` and REST `POST`.
//!
//! Both front ends build a [`TableRequest`] / [`ProfileRequest`]; validation (connector,
//! role, profile, options, schema, format) happens here, completely, before anything is
//! stored, so a failed create leaves nothing behind.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use catalog::{FieldDef, Profile, TableDef, new_id, now_rfc3339};
use connectors::connector::DynConnector;
use connectors::format::{Format, FormatSpec};
use connectors::options::{WithOptions, hint_for, nest};
use connectors::schema::{parse_type, sql_type_name};
use connectors::{ConnectorError, TableRole};
use serde_json::{Map, Value};

use crate::Engine;
use crate::error::{EngineError, Result};

/// Options every table takes, whatever its connector.
const COMMON_OPTIONS: &[&str] = &[
    "connector",
    "type",
    "format",
    "bad_data",
    "connection_profile",
    "event_time_field",
    "watermark_delay",
    "idle_time",
    "idle_micros",
];

/// A table definition from SQL or REST, before validation.
#[derive(Debug, Clone, Default)]
pub struct TableRequest {
    pub name: String,
    pub connector: String,
    /// `source` / `sink`; defaults to the connector's only role.
    pub role: Option<String>,
    /// Profile id or name.
    pub profile: Option<String>,
    /// Connection settings given on the table itself (nested, snake_case).
    pub inline_profile: Value,
    /// Connector table settings (nested, snake_case).
    pub config: Value,
    pub format: FormatSpec,
    /// Declared columns; `None` to take the connector's implied schema.
    pub fields: Option<Vec<FieldDef>>,
    pub event_time_field: Option<String>,
    pub watermark_delay: Option<String>,
    /// How long a source partition may be silent before it stops holding the watermark
    /// back (`'30s'`; `'0'` never).
    pub idle_time: Option<String>,
    /// `PRIMARY KEY` columns.
    pub primary_key: Vec<String>,
}

/// A profile definition from SQL or REST, before validation.
#[derive(Debug, Clone, Default)]
pub struct ProfileRequest {
    pub name: String,
    pub connector: String,
    pub description: Option<String>,
    /// Connector profile settings (nested, snake_case).
    pub config: Value,
}

/// A stored table with everything needed to run it.
#[derive(Clone)]
pub struct ResolvedTable {
    pub def: TableDef,
    pub connector: Arc<dyn DynConnector>,
    pub role: TableRole,
    /// Profile settings merged with the table's inline connection settings.
    pub profile_config: Value,
    pub schema: SchemaRef,
    pub format: FormatSpec,
}

impl std::fmt::Debug for ResolvedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedTable")
            .field("name", &self.def.name)
            .field("role", &self.role)
            .finish()
    }
}

fn property_names(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Parse the role option.
fn parse_role(value: &str) -> Result<TableRole> {
    match value.to_ascii_lowercase().as_str() {
        "source" => Ok(TableRole::Source),
        "sink" => Ok(TableRole::Sink),
        _ => Err(ConnectorError::InvalidValue {
            connector: "table".into(),
            key: "type".into(),
            value: value.into(),
            expected: "one of source, sink".into(),
        }
        .into()),
    }
}

/// Deep-merge `over` onto `base` (objects merge, everything else is replaced).
fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match out.get(k) {
                    Some(existing) => merge(existing, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (_, Value::Null) => base.clone(),
        _ => over.clone(),
    }
}

/// `idle_time = '30s'`, or Arroyo's `idle_micros = '30000000'` (`-1`: never idle).
fn idle_time_option(options: &mut WithOptions) -> Result<Option<String>> {
    match (options.remove("idle_time"), options.remove("idle_micros")) {
        (Some(_), Some(_)) => Err(EngineError::InvalidParameter(
            "give idle_time or idle_micros, not both".into(),
        )),
        (Some(time), None) => Ok(Some(time)),
        (None, Some(micros)) => match micros.trim().parse::<i64>() {
            Ok(n) if n < 0 => Ok(Some("0".into())),
            Ok(n) => Ok(Some(format!("{}ms", n / 1000))),
            Err(_) => Err(EngineError::InvalidParameter(format!(
                "invalid idle_micros '{micros}': expected microseconds, or -1 to disable idleness"
            ))),
        },
        (None, None) => Ok(None),
    }
}

impl TableRequest {
    /// Build a request from SQL `CREATE TABLE name (columns) WITH (options)`.
    pub fn from_sql(
        engine: &Engine,
        name: String,
        fields: Option<Vec<FieldDef>>,
        mut options: WithOptions,
    ) -> Result<TableRequest> {
        let connector_name = options.remove("connector").ok_or_else(|| {
            EngineError::InvalidParameter(format!(
                "missing required option 'connector' for table '{name}'; available connectors: {}",
                engine.registry.names().join(", ")
            ))
        })?;
        let connector = engine.registry.get(&connector_name)?;
        let mut request = TableRequest {
            name,
            connector: connector_name,
            role: options.remove("type"),
            profile: options.remove("connection_profile"),
            fields,
            event_time_field: options.remove("event_time_field"),
            watermark_delay: options.remove("watermark_delay"),
            idle_time: idle_time_option(&mut options)?,
            ..TableRequest::default()
        };
        let id = connector.metadata().id;
        if let Some(format) = options.remove("format") {
            request.format.format = Some(Format::parse(id, &format)?);
        }
        if let Some(bad_data) = options.remove("bad_data") {
            request.format.bad_data = FormatSpec::parse_bad_data(id, &bad_data)?;
        }
        let profile_keys = property_names(&connector.profile_schema());
        let table_keys = property_names(&connector.table_schema());
        let mut profile_options = WithOptions::new();
        let mut table_options = WithOptions::new();
        for (key, value) in options {
            let head = key.split('.').next().unwrap_or_default();
            if FormatSpec::is_format_option(&key) {
                FormatSpec::check_option(&key)?;
                request.format.options.insert(key, value);
            } else if table_keys.iter().any(|k| k == head) {
                table_options.insert(key, value);
            } else if profile_keys.iter().any(|k| k == head) {
                profile_options.insert(key, value);
            } else {
                let candidates: Vec<&str> = table_keys
                    .iter()
                    .chain(profile_keys.iter())
                    .map(String::as_str)
                    .chain(COMMON_OPTIONS.iter().copied())
                    .collect();
                return Err(ConnectorError::UnknownOption {
                    connector: connector.metadata().id.to_string(),
                    key: key.clone(),
                    hint: hint_for(&key, candidates.iter().copied()),
                }
                .into());
            }
        }
        request.inline_profile = nest(&profile_options)?;
        request.config = nest(&table_options)?;
        Ok(request)
    }
}

impl Engine {
    /// Validate a table request completely and return the definition it would store.
    pub async fn check_table(&self, request: TableRequest) -> Result<ResolvedTable> {
        let connector = self.registry.get(&request.connector)?;
        let meta = connector.metadata();
        let role = match &request.role {
            Some(role) => parse_role(role)?,
            None => meta
                .default_role()
                .ok_or_else(|| ConnectorError::MissingOption {
                    connector: meta.id.to_string(),
                    key: "type".into(),
                })?,
        };
        if (role == TableRole::Source && !meta.source) || (role == TableRole::Sink && !meta.sink) {
            let can = if meta.source { "source" } else { "sink" };
            return Err(ConnectorError::InvalidValue {
                connector: meta.id.to_string(),
                key: "type".into(),
                value: role.as_str().into(),
                expected: format!("'{can}' (connector '{}' is {can}-only)", meta.id),
            }
            .into());
        }
        if role == TableRole::Source {
            self.dead_letter_table(&request.name, &request.format)
                .await?;
        }
        if let Some(format) = request.format.format {
            if meta.formats.is_empty() {
                return Err(EngineError::InvalidParameter(format!(
                    "connector '{}' takes no 'format' option",
                    meta.id
                )));
            }
            if !meta.formats.contains(&format.name()) {
                return Err(ConnectorError::InvalidValue {
                    connector: meta.id.to_string(),
                    key: "format".into(),
                    value: format.name().into(),
                    expected: format!("one of {}", meta.formats.join(", ")),
                }
                .into());
            }
        }
        let profile: Option<Profile> = match &request.profile {
            Some(p) => {
                let profile = self.catalog.profile(p).await?;
                if profile.connector != meta.id {
                    return Err(EngineError::InvalidParameter(format!(
                        "connection profile '{}' is for connector '{}', not '{}'",
                        profile.name, profile.connector, meta.id
                    )));
                }
                Some(profile)
            }
            None => None,
        };
        let base = profile
            .as_ref()
            .map(|p| p.config.clone())
            .unwrap_or(Value::Object(Map::new()));
        let inline_profile = if request.inline_profile.is_null() {
            Value::Object(Map::new())
        } else {
            request.inline_profile.clone()
        };
        let profile_config = connector.check_profile(&merge(&base, &inline_profile))?;
        let config = connector.check_table(&request.config)?;
        let implied = connector.implied_schema(&config)?;
        let (schema, fields, inferred) = match (&request.fields, implied) {
            (Some(fields), Some(implied)) if !fields.is_empty() => {
                let projected = project_implied(meta.id, &implied, fields)?;
                (projected, fields.clone(), false)
            }
            (Some(fields), _) if !fields.is_empty() => {
                let schema = fields_to_schema(fields)?;
                // Store the canonical spelling (INTEGER → INT) so SQL and REST agree.
                let fields = schema_to_fields(&schema);
                (schema, fields, false)
            }
            (_, Some(implied)) => {
                let fields = schema_to_fields(&implied);
                (implied, fields, true)
            }
            // A sink without columns takes those of the query that writes it.
            (_, None) if role == TableRole::Sink => (
                Arc::new(arrow::datatypes::Schema::empty()),
                Vec::new(),
                false,
            ),
            (_, None) => match connector
                .infer_schema(&profile_config, &config, &request.format)
                .await?
            {
                // Inferred from data: the stored columns are the schema from now on.
                Some(schema) => {
                    let fields = schema_to_fields(&schema);
                    (fields_to_schema(&fields)?, fields, false)
                }
                None => {
                    return Err(EngineError::InvalidParameter(format!(
                        "table '{}' needs a column list: connector '{}' does not define a schema{}",
                        request.name,
                        meta.id,
                        if meta.id == "filesystem" {
                            " and there is no file to infer one from"
                        } else {
                            ""
                        }
                    )));
                }
            },
        };
        if let Some(column) = &request.event_time_field {
            let field = schema.field_with_name(column).map_err(|_| {
                EngineError::InvalidParameter(format!(
                    "event_time_field '{column}' is not a column of table '{}'",
                    request.name
                ))
            })?;
            if !matches!(
                field.data_type(),
                arrow::datatypes::DataType::Timestamp(_, _)
            ) {
                return Err(EngineError::InvalidParameter(format!(
                    "event_time_field '{column}' must be a TIMESTAMP column, not {}",
                    sql_type_name(field.data_type())
                )));
            }
        }
        if let Some(idle) = &request.idle_time
            && connectors::options::parse_duration(idle).is_none()
        {
            return Err(EngineError::InvalidParameter(format!(
                "invalid idle_time '{idle}': expected {} ('0' never treats a partition as idle)",
                connectors::options::DURATION_EXPECTED
            )));
        }
        if let Some(delay) = &request.watermark_delay {
            if request.event_time_field.is_none() {
                return Err(EngineError::InvalidParameter(format!(
                    "watermark_delay needs event_time_field (or WATERMARK FOR <column>) on table '{}'",
                    request.name
                )));
            }
            if connectors::options::parse_duration(delay).is_none() {
                return Err(EngineError::InvalidParameter(format!(
                    "invalid watermark_delay '{delay}': expected {}",
                    connectors::options::DURATION_EXPECTED
                )));
            }
        }
        for key in &request.primary_key {
            if schema.field_with_name(key).is_err() {
                return Err(EngineError::InvalidParameter(format!(
                    "PRIMARY KEY column '{key}' is not a column of table '{}'",
                    request.name
                )));
            }
        }
        if role == TableRole::Source
            && request.format.format == Some(Format::DebeziumJson)
            && request.primary_key.is_empty()
        {
            return Err(EngineError::InvalidParameter(format!(
                "table '{}': a source of changes (format 'debezium_json') needs a PRIMARY KEY, e.g. (id BIGINT, ..., PRIMARY KEY (id))",
                request.name
            )));
        }
        if request.event_time_field.is_some() && role != TableRole::Source {
            return Err(EngineError::InvalidParameter(format!(
                "event_time_field applies to source tables only; '{}' is a sink",
                request.name
            )));
        }
        connector.validate_table(&profile_config, &config, role, &schema)?;
        let now = now_rfc3339();
        let def = TableDef {
            id: new_id("tbl"),
            name: request.name.clone(),
            connector: meta.id.to_string(),
            table_type: role.as_str().to_string(),
            connection_profile_id: profile.map(|p| p.id),
            inline_profile,
            config,
            format: serde_json::to_value(&request.format)
                .map_err(|e| EngineError::InvalidParameter(e.to_string()))?,
            fields,
            schema_inferred: inferred,
            event_time_field: request.event_time_field.clone(),
            watermark_delay: request.watermark_delay.clone(),
            idle_time: request.idle_time.clone(),
            primary_key: request.primary_key.clone(),
            created_at: now.clone(),
            updated_at: now,
        };
        Ok(ResolvedTable {
            def,
            connector,
            role,
            profile_config,
            schema,
            format: request.format,
        })
    }

    /// Validate and store a table.
    pub async fn create_table(&self, request: TableRequest) -> Result<TableDef> {
        if self.catalog.view(&request.name).await.is_ok() {
            return Err(catalog::CatalogError::Duplicate {
                kind: "view",
                name: request.name,
            }
            .into());
        }
        let resolved = self.check_table(request).await?;
        self.catalog.create_table(&resolved.def).await?;
        tracing::info!(table = %resolved.def.name, connector = %resolved.def.connector, "created table");
        Ok(resolved.def)
    }

    /// Load a stored table with its connector, merged profile and Arrow schema.
    pub async fn resolve_table(&self, name: &str) -> Result<ResolvedTable> {
        let def = self.catalog.table(name).await?;
        let connector = self.registry.get(&def.connector)?;
        let role = parse_role(&def.table_type)?;
        let base = match &def.connection_profile_id {
            Some(id) => self.catalog.profile(id).await?.config,
            None => Value::Object(Map::new()),
        };
        let profile_config = merge(&base, &def.inline_profile);
        let format: FormatSpec = if def.format.is_null() {
            FormatSpec::default()
        } else {
            serde_json::from_value(def.format.clone())
                .map_err(|e| EngineError::InvalidParameter(format!("table '{}': {e}", def.name)))?
        };
        let schema = match connector.implied_schema(&def.config)? {
            Some(implied) if def.schema_inferred => implied,
            Some(implied) => project_implied(&def.connector, &implied, &def.fields)?,
            None => fields_to_schema(&def.fields)?,
        };
        Ok(ResolvedTable {
            def,
            connector,
            role,
            profile_config,
            schema,
            format,
        })
    }

    /// Validate a profile request and return the profile it would store.
    pub fn check_profile(&self, request: ProfileRequest) -> Result<Profile> {
        let connector = self.registry.get(&request.connector)?;
        let config = connector.check_profile(&request.config)?;
        let now = now_rfc3339();
        Ok(Profile {
            id: new_id("prof"),
            name: request.name,
            connector: connector.metadata().id.to_string(),
            description: request.description,
            config,
            created_at: now.clone(),
            updated_at: now,
        })
    }

    /// Validate and store a profile.
    pub async fn create_profile(&self, request: ProfileRequest) -> Result<Profile> {
        let profile = self.check_profile(request)?;
        self.catalog.create_profile(&profile).await?;
        Ok(profile)
    }
}

impl Engine {
    /// The dead-letter table of a source with `bad_data = 'dlq'`: `dlq.table` must name a
    /// sink table with dead-letter columns.
    pub async fn dead_letter_table(
        &self,
        source: &str,
        format: &FormatSpec,
    ) -> Result<Option<ResolvedTable>> {
        let named = format.options.get("dlq.table");
        match (format.bad_data, named) {
            (connectors::format::BadData::Dlq, Some(name)) => {
                if name == source {
                    return Err(EngineError::InvalidParameter(format!(
                        "table '{source}' cannot be its own dead-letter table"
                    )));
                }
                let table = self.resolve_table(name).await?;
                if table.role != TableRole::Sink {
                    return Err(EngineError::WrongObjectType(format!(
                        "dead-letter table '{name}' must be a sink table (type = 'sink')"
                    )));
                }
                crate::exec::dlq::check_dlq_schema(name, &table.schema)?;
                Ok(Some(table))
            }
            (connectors::format::BadData::Dlq, None) => Err(EngineError::InvalidParameter(
                format!("table '{source}': bad_data = 'dlq' needs 'dlq.table' = '<sink table>'"),
            )),
            (_, Some(_)) => Err(EngineError::InvalidParameter(
                "'dlq.table' is only used with bad_data = 'dlq'".into(),
            )),
            (_, None) => Ok(None),
        }
    }
}

/// Columns declared on a connector with an implied schema must be among its columns.
fn project_implied(connector: &str, implied: &SchemaRef, fields: &[FieldDef]) -> Result<SchemaRef> {
    let mut out = Vec::with_capacity(fields.len());
    for field in fields {
        let Ok(found) = implied.field_with_name(&field.name) else {
            let names: Vec<&str> = implied.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(EngineError::InvalidParameter(format!(
                "column '{}' is not produced by connector '{connector}'; it produces {}",
                field.name,
                names.join(", ")
            )));
        };
        let declared = parse_type(&field.data_type).map_err(|_| {
            EngineError::InvalidParameter(format!(
                "column '{}' has unsupported type '{}'",
                field.name, field.data_type
            ))
        })?;
        if &declared != found.data_type() {
            return Err(EngineError::InvalidParameter(format!(
                "column '{}' of connector '{connector}' has type {}, not {}",
                field.name,
                sql_type_name(found.data_type()),
                sql_type_name(&declared)
            )));
        }
        out.push(found.clone());
    }
    Ok(Arc::new(Schema::new(out)))
}

/// Arrow schema of declared columns.
pub fn fields_to_schema(fields: &[FieldDef]) -> Result<SchemaRef> {
    let mut out = Vec::with_capacity(fields.len());
    for field in fields {
        let data_type = parse_type(&field.data_type).map_err(|e| match e {
            ConnectorError::UnsupportedType(t) => EngineError::InvalidParameter(format!(
                "column '{}' has unsupported type '{t}'",
                field.name
            )),
            other => other.into(),
        })?;
        out.push(Field::new(&field.name, data_type, field.nullable));
    }
    Ok(Arc::new(Schema::new(out)))
}

/// Catalog columns of an Arrow schema.
pub fn schema_to_fields(schema: &Schema) -> Vec<FieldDef> {
    schema
        .fields()
        .iter()
        .map(|f| FieldDef {
            name: f.name().clone(),
            data_type: sql_type_name(f.data_type()),
            nullable: f.is_nullable(),
        })
        .collect()
}

impl Engine {
    /// Up to `n` rows read from a source table definition, as JSON objects (for the REST
    /// `test` endpoints). Sinks give no rows.
    pub async fn sample_rows(
        &self,
        table: &ResolvedTable,
        n: usize,
        deadline: std::time::Duration,
    ) -> Result<Vec<Value>> {
        if table.role != TableRole::Source {
            return Ok(Vec::new());
        }
        let ctx = connectors::SourceContext {
            table_name: table.def.name.clone(),
            schema: table.schema.clone(),
            partition: 0,
            partitions: 1,
            batch_size: n.max(1),
            format: table.format.clone(),
            bad_records: Default::default(),
            preview: true,
            event_time: false,
            restore: None,
        };
        let mut source =
            table
                .connector
                .make_source(&table.profile_config, &table.def.config, ctx)?;
        let batch = match tokio::time::timeout(deadline, source.next_batch()).await {
            Ok(batch) => batch?,
            Err(_) => None,
        };
        let Some(batch) = batch else {
            return Ok(Vec::new());
        };
        let batch = batch.slice(0, batch.num_rows().min(n));
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        writer.write(&batch).map_err(ConnectorError::from)?;
        writer.finish().map_err(ConnectorError::from)?;
        let bytes = writer.into_inner();
        serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::InvalidParameter(format!("cannot show sample rows: {e}")))
    }
}
