//! `filesystem`: JSON, CSV and Parquet files as sources; JSON and Parquet files as sinks.

mod config;
mod csv_rows;
mod infer;
mod location;
mod paths;
mod sink;
mod source;

use async_trait::async_trait;

pub use config::{
    Compression, FileNaming, FileSystemTable, Partitioning, RollingPolicy, SourceOptions,
};

use crate::connector::{
    Connector, ConnectorMetadata, NoProfile, Sink, SinkContext, Source, SourceContext, TableRole,
};
use crate::error::{ConnectorError, Result};

/// The filesystem connector.
#[derive(Debug, Clone, Copy)]
pub struct FileSystemConnector;

#[async_trait]
impl Connector for FileSystemConnector {
    type ProfileConfig = NoProfile;
    type TableConfig = FileSystemTable;

    fn metadata(&self) -> ConnectorMetadata {
        ConnectorMetadata {
            id: "filesystem",
            name: "FileSystem",
            description: "Reads JSON, CSV and Parquet files; writes JSON and Parquet files",
            category: "storage",
            source: true,
            sink: true,
            formats: &[
                "json",
                "csv",
                "parquet",
                "raw_string",
                "raw_bytes",
                "debezium_json",
            ],
        }
    }

    fn bounded(&self, table: &FileSystemTable) -> bool {
        !table.source.as_ref().and_then(|s| s.watch).unwrap_or(false)
    }

    async fn infer_schema(
        &self,
        _profile: &NoProfile,
        table: &FileSystemTable,
        format: &crate::format::FormatSpec,
    ) -> Result<Option<arrow::datatypes::SchemaRef>> {
        if let location::Location::Store { .. } =
            location::Location::resolve(&table.path, table.storage.as_ref())?
        {
            return infer::infer_remote(table, format).await;
        }
        let table = table.clone();
        let format = format.clone();
        tokio::task::spawn_blocking(move || infer::infer(&table, &format))
            .await
            .map_err(|e| ConnectorError::Config(format!("schema inference failed: {e}")))?
    }

    fn validate_table(
        &self,
        _profile: &NoProfile,
        table: &FileSystemTable,
        role: TableRole,
        _schema: &arrow::datatypes::SchemaRef,
    ) -> Result<()> {
        location::Location::resolve(&table.path, table.storage.as_ref())?;
        if let Some(pattern) = table
            .source
            .as_ref()
            .and_then(|s| s.regex_pattern.as_deref())
        {
            regex::Regex::new(pattern).map_err(|e| ConnectorError::InvalidValue {
                connector: "filesystem".into(),
                key: "source.regex_pattern".into(),
                value: pattern.into(),
                expected: format!("a regular expression ({e})"),
            })?;
        }
        match role {
            TableRole::Source => {
                if table.rolling_policy.is_some()
                    || table.filename.is_some()
                    || table.partitioning.is_some()
                {
                    return Err(ConnectorError::Config(
                        "rolling_policy.*, filename.* and partitioning.* are sink options".into(),
                    ));
                }
            }
            TableRole::Sink => {
                if table.source.is_some() {
                    return Err(ConnectorError::Config(
                        "source.* options are for source tables".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn make_source(
        &self,
        _profile: &NoProfile,
        table: &FileSystemTable,
        ctx: SourceContext,
    ) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::FileSource::start(table, ctx)?))
    }

    fn make_sink(
        &self,
        _profile: &NoProfile,
        table: &FileSystemTable,
        ctx: SinkContext,
    ) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::FileSink::new(table, ctx)?))
    }
}
